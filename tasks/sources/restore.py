"""Restoring a source into a running server: a dump file, a live server, a mydumper dir.

Dumps are streamed: read in 1 MiB blocks, decompressed on the fly (gzip, zstd) and
piped into the `mariadb` client — never loaded whole into memory. Errors carry what the
operator needs to find the fault: the client's line number, or the byte offset in the
file where decompression broke. A dump written by mysqldump (or `phoenix generate`) must
end with its `-- Dump completed` trailer; a dump cut short at a statement boundary
would otherwise restore "successfully" with tables missing.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import os
import re
import shutil
import stat
import subprocess
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

import pymysql

from phoenix.db import AdminAccess, client_binary, quote
from phoenix.errors import RestoreError, SourceInvalid
from tasks.sources import _client, live
from tasks.sources._client import client_error, feed
from tasks.sources._databases import Databases, Statements
from tasks.sources._definers import Definers
from tasks.sources._mysql8 import is_mysql8
from tasks.sources._mysql8_blocks import BlockTranslator
from tasks.sources._mysql8_server import Mysql8Restore
from tasks.sources._position import Position, StreamBroken, Tracker

Progress = Callable[[int, int | None, float, float | None], None]  # done, total, bytes/s, eta s
_BLOCK = 1 << 20
_NAMES_DB = re.compile(rb"^(CREATE DATABASE|USE )", re.M)
_PRODUCERS = (b"-- MySQL dump", b"-- MariaDB dump", b"-- Phoenix synthetic shop dump")
# MariaDB's mysqldump (10.11.8+) puts this before its header: the client's sandbox mode.
_SANDBOX = re.compile(rb"^/\*M!999999\\- enable the sandbox mode \*/ *\n")


def _from_dump_tool(head: bytes) -> bool:
    return _SANDBOX.sub(b"", head, count=1).startswith(_PRODUCERS)


@dataclass
class RestoreReport:
    source: str
    kind: str
    bytes_read: int
    seconds: float
    database: str | None  # None when the dump names its own databases
    # The databases restored: the dump's own (in the order it uses them), else [database].
    databases: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # system schemas the dump held, not restored
    position: str | None = None  # a live source's binary-log position of the copy (live.Position JSON)
    notes: list[str] = field(default_factory=list)  # what a translation changed (e.g. a dropped MySQL 8 CHECK)


def describe(source: str) -> str:
    """The source as it may be logged: no password, ever."""
    return live.describe(source) if live.is_live(source) else source


def restore(source: str, admin: AdminAccess, database: str, progress: Progress | None = None,
            jobs: int = 1, inline: RowRewriter | None = None) -> RestoreReport:
    """Restore `source` (path to .sql/.sql.gz/.sql.zst, mydumper dir, or mysql:// URL).
    With `jobs` > 1, a mysqldump-format file is restored over that many connections.
    With `inline`, such a file's rows are anonymized on the way in (`inline.done` says which
    tables were; the rest is left to the anonymize step). A dump that names its databases
    (`CREATE DATABASE`/`USE`) restores into them, without the system schemas."""
    progress = progress or (lambda *_: None)
    check_source(source)
    if source.startswith(("mysql://", "mariadb://")):
        return _restore_live(source, admin, database, progress)
    path = Path(source)
    if path.is_dir():
        return _restore_mydumper(path, admin, database)
    return _restore_dump(path, admin, database, progress, jobs, inline)


# -- is it a source at all? (bad input, exit 2, before anything is created) -------------------
_WHAT = ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
         (stat.S_ISSOCK, "a socket"))
_HEAD = 1024
# What the first KB of any SQL dump holds somewhere: a comment or a statement keyword.
_SQLISH = re.compile(rb"(?im)^\s*(--|/\*|#|CREATE |INSERT |SET |DROP |USE |LOCK |ALTER |START |BEGIN|REPLACE )")
_ADVICE = "set `source` (or --source) to a .sql/.sql.gz/.sql.zst dump, a mydumper directory or a mysql:// URL"


def check_source(source: str) -> None:
    """Refuse what is not a source at all — a device, a FIFO, a plain directory, a file with
    NUL bytes or no SQL in its first KB — as SourceInvalid (exit 2), naming what it is. A
    dump that is one but breaks midway is the restore's RestoreError (exit 1)."""
    if source.startswith(("mysql://", "mariadb://")):
        return
    path = Path(source)
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise SourceInvalid(f"source {source}: {exc.strerror.lower() if exc.strerror else 'cannot be read'}; "
                            f"{_ADVICE}") from None
    what = next((name for test, name in _WHAT if test(mode)), None)
    if what:
        raise SourceInvalid(f"source {source} is {what}, not a dump; {_ADVICE}")
    if stat.S_ISDIR(mode):
        if not (path / "metadata").exists():
            raise SourceInvalid(f"source {path}: a directory but not a mydumper dump (no 'metadata' file); {_ADVICE}")
        return
    if not path.name.endswith((".sql", ".sql.gz", ".sql.zst")):
        raise SourceInvalid(f"source {path}: unknown dump format; expected .sql, .sql.gz or .sql.zst")
    head = _head(path)
    if b"\0" in head or not _SQLISH.search(head):
        why = "it is empty" if not head else "NUL bytes in its first KB" if b"\0" in head else "no SQL in its first KB"
        raise SourceInvalid(f"source {path}: not a SQL dump ({why}); {_ADVICE}")


def _head(path: Path) -> bytes:
    head = b""
    try:
        for block in dump_blocks(path):
            head += block
            if len(head) >= _HEAD:
                break
    except OSError as exc:
        raise SourceInvalid(f"source {path}: cannot be read ({exc.strerror}); {_ADVICE}") from None
    except RestoreError as exc:  # its first KB does not even decompress: not a dump at all
        raise SourceInvalid(str(exc)) from None
    return head[:_HEAD]


class RowRewriter(Protocol):
    """The seam through which another layer (the anonymizer, `anonymization.inline`) rewrites
    a dump's statements on their way in, without the restore knowing what it does."""

    def open(self) -> list[tuple[str, tuple]]:
        """Start; the session statements (with parameters) every restore connection runs first."""

    def holds(self, table: str, database: str | None = None) -> bool:
        """Whether the restore leaves this table's secondary and foreign keys to the caller
        (`database`: the one the dump's last USE named, None without one)."""

    def wrap(self, stmts: Iterator[tuple[int, bytes]]) -> Iterator[tuple[int, bytes]]:
        """The statements to run instead, each with its dump line."""

    def keys_held(self, keys: dict[tuple[str | None, str], list[str]]) -> None:
        """The key definitions the restore held back, per (database or None, table)."""

    def close(self) -> None: ...


# -- dump files ---------------------------------------------------------------------------
_CUT = "the file was cut short (truncated file): copy or dump it again"
_DAMAGED = "the file is damaged or not compressed as its name says: copy or dump it again"
_SQL = "the dump holds what this server cannot run there: fix it on the source or dump again"


def dump_blocks(path: Path | str) -> Iterator[bytes]:
    """The decompressed bytes of a dump file (.sql, .sql.gz, .sql.zst), block by block."""
    with open(path, "rb") as raw:
        yield from _reader(Path(path), raw)


def _reader(path: Path, raw: BinaryIO) -> Iterator[bytes]:
    name = path.name
    try:
        if name.endswith(".gz"):
            d = zlib.decompressobj(wbits=31)
            while block := raw.read(_BLOCK):
                yield d.decompress(block)
                while d.unused_data:  # concatenated gzip members
                    rest = d.unused_data
                    d = zlib.decompressobj(wbits=31)
                    yield d.decompress(rest)
            if not d.eof:
                raise StreamBroken(f"{path}: the gzip stream ends early at byte {raw.tell()}", _CUT)
        elif name.endswith(".zst"):
            import zstandard

            d = zstandard.ZstdDecompressor().decompressobj()
            fed = False
            while block := raw.read(_BLOCK):
                fed = True
                yield d.decompress(block)
            if fed and not d.eof:
                raise StreamBroken(f"{path}: the zstd stream ends early at byte {raw.tell()}", _CUT)
        elif name.endswith(".sql"):
            while block := raw.read(_BLOCK):
                yield block
        else:
            raise RestoreError(f"{path}: unknown dump format; expected .sql, .sql.gz or .sql.zst")
    except zlib.error as exc:
        raise StreamBroken(f"{path}: not valid gzip near byte {raw.tell()} ({exc})", _DAMAGED) from None
    except gzip.BadGzipFile as exc:
        raise StreamBroken(f"{path}: not valid gzip near byte {raw.tell()} ({exc})", _DAMAGED) from None
    except Exception as exc:
        if type(exc).__name__ == "ZstdError":
            raise StreamBroken(f"{path}: not valid zstd near byte {raw.tell()} ({exc})", _DAMAGED) from None
        raise


def _ensure_database(admin: AdminAccess, database: str) -> None:
    res = subprocess.run([client_binary(), *admin.client_args(), "-e", f"CREATE DATABASE IF NOT EXISTS {quote(database)}"],
                         capture_output=True, env={**os.environ, **admin.client_env()})
    if res.returncode != 0:
        raise RestoreError(f"creating database {database!r} failed: {client_error(res.stderr)}")


def _restore_dump(path: Path, admin: AdminAccess, database: str, progress: Progress, jobs: int,
                  inline: RowRewriter | None) -> RestoreReport:
    total = path.stat().st_size
    t0 = time.monotonic()
    with open(path, "rb") as raw:
        track = Tracker(decompressed=not path.name.endswith(".sql"))
        blocks = track.blocks(_reader(path, raw))
        first = b""
        for block in blocks:  # enough of the head to see whether it names its databases
            first += block
            if len(first) >= _BLOCK:
                break
        named = bool(_NAMES_DB.search(first))
        target = None if named else database
        if target:
            _ensure_database(admin, target)
        tail = [b""]
        stream = _reporting(raw, total, itertools.chain([first], blocks), progress, t0, tail)
        dumped = _from_dump_tool(first)
        dbs, notes = Databases(), []
        mysql8 = Mysql8Restore(admin, str(path)) if dumped and is_mysql8(first) else None
        definers = mysql8.definers if mysql8 else Definers(admin) if dumped else None
        try:
            try:
                # A dump that names its databases goes statement by statement: the system schemas are left out.
                if (jobs > 1 or inline or named) and dumped:
                    translate = mysql8.translator.statements if mysql8 else None
                    _load_parallel(path, stream, admin, target, jobs, inline, dbs, translate, track)
                else:
                    lines = BlockTranslator(mysql8.translator).blocks(stream) if mysql8 else stream
                    _load_client(path, dbs.tap(lines) if named else lines, admin, target, track,
                                 lambda: dumped and b"-- Dump completed" not in tail[0])
            except RestoreError as exc:
                _blame_the_stream(exc, stream, track)
            if definers:
                if not mysql8:
                    definers.of_objects(dbs.names if named else [database])
                definers.grant(dbs.names if named else [database])
            notes = mysql8.translator.notes if mysql8 else []
        finally:
            if definers:
                definers.close()
    if dumped and b"-- Dump completed" not in tail[0]:
        raise RestoreError(f"{path}: the dump ends at {track.end()} without its '-- Dump completed' trailer; {_CUT}")
    if named and not dbs.names:
        raise RestoreError(f"{path}: the dump holds no database besides the system schemas "
                           f"({', '.join(dbs.skipped) or 'none'}); dump the application's databases")
    secs = time.monotonic() - t0
    progress(total, total, total / max(secs, 1e-6), 0.0)
    return RestoreReport(str(path), "dump", total, secs, target, dbs.names if named else [database], dbs.skipped,
                         notes=notes)


def _blame_the_stream(exc: RestoreError, stream: Iterator[bytes], track: Tracker) -> None:
    """Re-raise a failed restore's error — or, for a compressed dump whose rest does not
    decompress, that damage: it is the cause (a corrupt block may first decompress to garbage
    the server fails on)."""
    if track.decompressed and not isinstance(exc, StreamBroken):
        for _ in stream:  # raises StreamBroken, with its position, if the file is damaged further on
            pass
    raise exc


def _load_client(path: Path, stream: Iterator[bytes], admin: AdminAccess, target: str | None, track: Tracker,
                 cut: Callable[[], bool]) -> None:
    """One `mariadb` client reads the whole stream; `cut()`: whether the stream, once read,
    lacked its trailer (a failure at its end is then the truncation)."""
    failed, complete = feed(stream, admin, target)
    if failed is None:
        return
    if complete and cut():
        begun = f", inside the statement begun at line {failed.line}" if failed.line else ""
        raise RestoreError(f"{path}: the dump ends at {track.end()}{begun}; {_CUT}")
    at = track.locate(failed.line, failed.raw) if failed.line else None
    raise RestoreError(f"{path}: restore failed{f' at {at}' if at else ''}: {failed.message}; {_SQL}")


def _reporting(raw: BinaryIO, total: int, blocks: Iterator[bytes], progress: Progress, t0: float,
               tail: list[bytes]) -> Iterator[bytes]:
    """Pass blocks on, report progress about once a second, keep the stream's last bytes."""
    last_report = 0.0
    for block in blocks:
        if block:
            tail[0] = (tail[0] + block)[-256:]
        yield block
        now = time.monotonic()
        if now - last_report > 1.0:
            done = raw.tell()
            rate = done / max(now - t0, 1e-6)
            progress(done, total, rate, (total - done) / rate if rate else None)
            last_report = now


def _load_parallel(path: Path, stream: Iterator[bytes], admin: AdminAccess, target: str | None, jobs: int,
                   inline: RowRewriter | None, dbs: Databases, translate: Callable[[Statements], Statements] | None,
                   track: Tracker) -> None:
    from tasks.sources._keys import Deferral
    from tasks.sources._parallel import StatementError, load

    # A MySQL 8 dump is translated first (its definers made): everything after it sees MariaDB's syntax.
    def dump(s: Statements) -> Statements:
        return dbs.wrap(translate(s) if translate else s)

    if inline is None:
        deferral = Deferral()
        transform, init = (lambda s: deferral.wrap(dump(s))), []
    else:
        deferral = Deferral(hold=inline.holds)
        transform, init = (lambda s: inline.wrap(deferral.wrap(dump(s)))), inline.open()
    try:
        load(stream, admin, target, jobs, transform, init)
    except StatementError as exc:
        at = Position(exc.line, exc.offset, exc.table, track.decompressed)
        if exc.cut:
            raise RestoreError(f"{path}: the dump ends at {at}, {exc.message}; {_CUT}") from None
        raise RestoreError(f"{path}: restore failed at {at}: {exc.message}; {_SQL}") from None
    finally:
        if inline is not None:
            inline.keys_held(deferral.held)
            inline.close()


# -- a live server, read with mysqldump ------------------------------------------------------
def _restore_live(url: str, admin: AdminAccess, database: str, progress: Progress) -> RestoreReport:
    """With row-based binary logging on the source, the dump also records the position of its
    snapshot (`--master-data=2`, a comment): the golden keeps it for the next incremental cycle."""
    src = live.parse(url)
    dump_bin = shutil.which("mariadb-dump") or shutil.which("mysqldump")
    if not dump_bin:
        raise RestoreError("mysqldump not found: install mariadb-client")
    env = {**os.environ, **({"MYSQL_PWD": src.password} if src.password is not None else {})}
    args = [dump_bin, f"--host={src.host}", f"--port={src.port}", f"--user={src.user}",
            "--single-transaction", "--quick", "--routines", "--triggers", "--events", "--hex-blob",
            "--no-tablespaces", "--max-allowed-packet=1G"]
    with contextlib.suppress(pymysql.MySQLError), contextlib.closing(src.connect()) as conn:
        if live.not_ready(conn) is None:
            args.append("--master-data=2")
    _ensure_database(admin, database)
    t0 = time.monotonic()
    dump = subprocess.Popen([*args, src.database], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    client = _client.client(admin, database)
    done, head = 0, b""
    try:
        assert dump.stdout is not None and client.stdin is not None
        while block := dump.stdout.read(_BLOCK):
            if len(head) < _BLOCK:
                head += block[:_BLOCK]
            client.stdin.write(block)
            done += len(block)
            progress(done, None, done / max(time.monotonic() - t0, 1e-6), None)
        client.stdin.close()
    except BrokenPipeError:
        dump.kill()
    if dump.wait() != 0:
        client.kill()
        client.wait()
        raise RestoreError(f"source {describe(url)}: mysqldump failed: {client_error(dump.stderr.read())}")
    if client.wait() != 0:
        raise RestoreError(f"source {describe(url)}: restore failed: {client_error(_client.stderr(client))}")
    at = live.position_in_dump(head)
    return RestoreReport(describe(url), "live", done, time.monotonic() - t0, database, [database],
                         position=at.to_json() if at else None)


# -- a mydumper directory, restored in parallel with myloader ------------------------------------
def _restore_mydumper(path: Path, admin: AdminAccess, database: str) -> RestoreReport:
    loader = shutil.which("myloader")
    if not loader:
        raise RestoreError("myloader not found: install Debian's mydumper")
    args = [loader, f"--directory={path}", f"--database={database}", "--threads=2", "--overwrite-tables",
            "--user=root"]
    args += [f"--socket={admin.socket}"] if admin.socket else [f"--host={admin.host}", f"--port={admin.port}"]
    if admin.password:
        args.append(f"--password={admin.password}")  # myloader reads no env var; argv is local and short-lived
    size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    t0 = time.monotonic()
    res = subprocess.run(args, capture_output=True)
    if res.returncode != 0:
        raise RestoreError(f"source {path}: myloader failed: {client_error(res.stderr)}")
    return RestoreReport(str(path), "mydumper", size, time.monotonic() - t0, database, [database])
