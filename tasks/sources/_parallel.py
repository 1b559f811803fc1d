"""Restoring a mysqldump-format stream over several connections at once.

One `mariadb` client runs every statement on one server thread: on 2 cores the restore
uses one. mysqldump's output is regular enough to cut into statements without a SQL
parser (each extended INSERT is one line; other statements end with the delimiter at
the end of a line; `DELIMITER` switches it for triggers and routines), so:

- session statements (`SET …`, `USE …`) go to every connection, in order;
- row statements (`INSERT`/`REPLACE`) go to the least busy connection — rows of one
  table are independent, and foreign-key checks are off during a restore;
- every other statement (CREATE TABLE, triggers, views, ENABLE KEYS …) runs alone on
  the first connection, after all earlier rows are in and before any later statement:
  the dump's order holds wherever it matters;
- `LOCK TABLES`/`UNLOCK TABLES` are dropped: a write lock of one connection would
  serialize the others, and the breeder has no other users.

An error names the dump's line where the failing statement broke (its line of a
multi-line statement, by the server's `at line M`), its byte offset and table; a statement
cut short by the end of the stream is a truncated file, at the stream's end.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import pymysql

from phoenix.db import AdminAccess, describe_mysql
from tasks.sources._position import table_in, within

_QUEUE = 8  # statements waiting per connection; an extended INSERT is ~1 MB
Statements = Iterator[tuple[int, bytes]]
_ER_LOCK_DEADLOCK = 1213
_DEADLOCK_RETRIES = 5


class StatementError(Exception):
    """A statement failed (`line`: where in the dump; `offset`: its byte, `table`: its table,
    when known), or the stream ended inside one."""

    def __init__(self, line: int, message: str, offset: int | None = None, table: str | None = None,
                 begun: int | None = None, cut: bool = False) -> None:
        super().__init__(message)
        self.cut = cut  # the stream ended inside the statement
        self.line, self.message, self.offset, self.table = line, message, offset, table
        self.begun = line if begun is None else begun  # the statement's first line
        self.head: int | None = None  # where the failed statement's rows begin, as it ran (see `rows_at`)


class Splitter:
    """Cuts a byte stream into (first line number, statement without its delimiter), counting
    bytes too: `in_dump` names a failed statement's byte and table as the dump has them."""

    _KEEP = 4096  # statements whose start is remembered: more than the queues hold

    def __init__(self) -> None:
        self.starts: dict[int, int] = {}
        self.heads: dict[int, tuple[int, str | None]] = {}  # a recent INSERT's: where its rows begin, its table

    def in_dump(self, err: StatementError) -> StatementError:
        """The failed byte and table as the dump has them: a rewritten statement (an inline
        anonymizer's) has another head — a column list, a sample table — and the same rows."""
        begun = self.starts.get(err.begun)
        head, table = self.heads.get(err.begun, (-1, None))
        err.table = table or err.table
        if begun is None or err.offset is None:
            err.offset = None
        elif err.head is None or err.head < 0 or head < 0:
            err.offset = begun + err.offset
        else:
            err.offset = begun + max(err.offset - err.head, 0) + head
        return err

    def split(self, blocks: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
        delim, buf, start, lineno, rest, pos = b";", [], 0, 0, b"", 0
        starts = self.starts
        for block in blocks:
            if not block:
                continue
            lines = (rest + block).split(b"\n")
            rest = lines.pop()
            for line in lines:
                lineno += 1
                at, pos = pos, pos + len(line) + 1
                if not buf:
                    s = line.strip()
                    if not s or s.startswith((b"--", b"/*M!999999\\- enable the sandbox mode")):
                        continue  # a comment, or the sandbox line the server would ignore
                    if s[:10].upper() == b"DELIMITER ":
                        delim = s.split()[1]
                        continue
                    start = lineno
                    starts[start] = at
                    if len(starts) > 2 * self._KEEP:  # forget the oldest half, now and then
                        starts = self.starts = dict(list(starts.items())[-self._KEEP :])
                buf.append(line)
                stripped = line.rstrip()
                if stripped.endswith(delim):
                    stmt = b"\n".join(buf).rstrip()[: -len(delim)]
                    buf = []
                    if stmt.strip():
                        if kind(stmt) == "rows":
                            heads = self.heads
                            heads[start] = (rows_at(stmt), table_in(b"\n" + stmt[:512]))
                            if len(heads) > 2 * self._KEEP:
                                heads = self.heads = dict(list(heads.items())[-self._KEEP :])
                        yield start, stmt
        if rest.strip():
            lineno += 1
            if not buf:
                start = lineno
            buf.append(rest)
        if buf and b"".join(buf).strip():
            end = pos + len(rest)  # the stream's end: the truncation is here, not where the statement began
            raise StatementError(lineno, f"inside the statement begun at line {start}", end, table_in(b"\n" + buf[0]),
                                 start, cut=True)


def statements(blocks: Iterator[bytes]) -> Iterator[tuple[int, bytes]]:
    """(first line number, statement without its delimiter) from a byte stream."""
    return Splitter().split(blocks)


def kind(stmt: bytes) -> str:
    """'rows', 'session', 'skip' or 'ddl'."""
    s = stmt.lstrip()
    head = s[:16].upper()
    if head.startswith((b"INSERT ", b"REPLACE ")):
        return "rows"
    if head.startswith((b"LOCK TABLES", b"UNLOCK TABLES")):
        return "skip"
    if s.startswith(b"/*!"):
        s = s[3:].lstrip(b"0123456789").lstrip()
        head = s[:16].upper()
    return "session" if head.startswith((b"SET ", b"USE ")) else "ddl"


def _failed(line: int, stmt: bytes, exc: pymysql.MySQLError) -> StatementError:
    """The error at its own line of a multi-line statement; `offset` from the statement's start
    (the caller adds the statement's)."""
    raw = str(exc.args[1]) if len(exc.args) > 1 else ""
    down, byte = within(raw, stmt)
    err = StatementError(line + down, describe_mysql(exc), byte, table_in(b"\n" + stmt[:512]), line)
    err.head = rows_at(stmt) if kind(stmt) == "rows" else None
    return err


def rows_at(stmt: bytes) -> int:
    """Where an INSERT's rows begin (after ` VALUES `), or -1."""
    at = stmt.find(b" VALUES ", 0, 1 << 16)
    return at + 8 if at >= 0 else -1


class _Connection(threading.Thread):
    def __init__(self, admin: AdminAccess, database: str | None, failed: threading.Event,
                 errors: list[StatementError], init: Sequence[tuple[str, tuple]] = ()) -> None:
        super().__init__(daemon=True, name="restore-conn")
        self.q: queue.Queue[tuple[int, bytes] | None] = queue.Queue(_QUEUE)
        self.failed, self.errors = failed, errors
        self.retries = 0
        self.conn = pymysql.connect(**admin.pymysql_kwargs(), database=database, autocommit=True,
                                    max_allowed_packet=1 << 30, charset="utf8mb4")
        self.conn.query("SET SESSION foreign_key_checks=0, unique_checks=0")
        try:
            self.conn.query("SET SESSION sql_log_bin=0")
        except pymysql.MySQLError:
            pass  # not privileged, or no binlog: nothing to skip
        with self.conn.cursor() as cur:
            for stmt, args in init:  # parameters: a key's pads never appear in a statement
                cur.execute(stmt, args)

    def run(self) -> None:
        while True:
            item = self.q.get()
            try:
                if item is None:
                    return
                if not self.failed.is_set():
                    line, stmt = item
                    try:
                        self._run(stmt)
                    except pymysql.MySQLError as exc:
                        self.errors.append(_failed(line, stmt, exc))
                        self.failed.set()
            finally:
                self.q.task_done()

    def _run(self, stmt: bytes) -> None:
        """Run one statement; one that InnoDB picked as a deadlock victim is run again.
        Rows of one table arriving on two connections can deadlock (e.g. InnoDB's bulk
        insert into an empty table locks it whole); the victim statement was rolled back
        whole (autocommit), so running it again is safe."""
        for attempt in range(_DEADLOCK_RETRIES + 1):
            try:
                self.conn.query(stmt)
                return
            except pymysql.err.OperationalError as exc:
                if exc.args[0] != _ER_LOCK_DEADLOCK or attempt == _DEADLOCK_RETRIES:
                    raise
                self.retries += 1
                time.sleep(0.05 * (attempt + 1))

    def close(self) -> None:
        self.q.put(None)
        self.join()
        self.conn.close()


def load(blocks: Iterator[bytes], admin: AdminAccess, database: str | None, jobs: int,
         transform: Callable[[Statements], Statements] = lambda s: s, init: Sequence[tuple[str, tuple]] = ()) -> int:
    """Run the stream's statements, after `transform`, on `jobs` connections (each runs
    `init` first); returns how many ran. Raises StatementError (with the dump's line) on
    the first failure."""
    failed, errors = threading.Event(), []
    conns = [_Connection(admin, database, failed, errors, init) for _ in range(jobs)]
    for c in conns:
        c.start()

    def barrier() -> None:
        for c in conns:
            c.q.join()

    count, splitter = 0, Splitter()
    try:
        for line, stmt in transform(splitter.split(blocks)):
            if failed.is_set():
                break
            k = kind(stmt)
            if k == "skip":
                continue
            count += 1
            if k == "session":
                for c in conns:
                    c.q.put((line, stmt))
            elif k == "rows":
                min(conns, key=lambda c: c.q.qsize()).q.put((line, stmt))
            else:
                barrier()
                conns[0].q.put((line, stmt))
                barrier()
        barrier()
    finally:
        for c in conns:
            c.close()
    if errors:
        raise splitter.in_dump(min(errors, key=lambda e: e.line))
    return count
