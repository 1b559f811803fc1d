"""The DEFINER accounts a dump's views, triggers, routines and events run as — MySQL 8's and
MariaDB's dumps alike.

A definer the breeder lacks is made to exist, as a locked account without a password, and is
given all privileges on the dump's databases: the objects keep their DEFINER exactly as the
source has it (a golden's objects equal the source's) and still run for the environment's
own user — an object whose definer does not exist fails every call ("The user specified as a
definer does not exist"). No one can log in as such an account, and no production password
hash is ever copied. Only statement heads are read for definers, never rows: a value that
reads `DEFINER=…` makes no account.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pymysql

from phoenix.db import AdminAccess, quote
from phoenix.errors import RestoreError
from tasks.sources._mysql8 import ROWS, definers_in

Statements = Iterator[tuple[int, bytes]]
# Where mysqldump writes a definer: `/*!50003 CREATE*/ /*!50017 DEFINER=…*/ … TRIGGER`, a view's
# `/*!50013 DEFINER=… SQL SECURITY … */` line, `CREATE DEFINER=… PROCEDURE`, an event's `/*!50106 …`.
_HEADS = (b"/*!", b"CREATE ")


class Definers:
    def __init__(self, admin: AdminAccess) -> None:
        self.conn = pymysql.connect(**admin.pymysql_kwargs(), autocommit=True)
        self.created: list[tuple[str, str]] = []
        self._seen: set[tuple[str, str]] = set()

    def need(self, user: str, host: str) -> None:
        """Make the account exist (once per account)."""
        if (user, host) in self._seen:
            return
        self._seen.add((user, host))
        with self.conn.cursor() as cur:
            cur.execute("SELECT 1 FROM mysql.user WHERE User = %s AND Host = %s", (user, host))
            if cur.fetchone():
                return
            try:
                cur.execute("CREATE USER %s@%s ACCOUNT LOCK", (user, host))
            except pymysql.MySQLError as exc:  # the account's name is not logged: it may be a person's
                raise RestoreError(f"a DEFINER account of the dump cannot be created (error {exc.args[0]})") from None
        self.created.append((user, host))

    def wrap(self, stmts: Statements) -> Statements:
        """The statement path: each statement passed on, the definers of non-row ones made."""
        for line, stmt in stmts:
            if b"DEFINER" in stmt and not stmt.startswith(ROWS):
                for account in definers_in(stmt):
                    self.need(*account)
            yield line, stmt

    def tap(self, blocks: Iterator[bytes]) -> Iterator[bytes]:
        """The client path: the blocks passed on; the definers of lines that begin an object
        (a line cut by a block is joined first). One C-level find per block without any."""
        rest = b""
        for block in blocks:
            data = rest + block
            cut = data.rfind(b"\n") + 1
            at = data.find(b"DEFINER", 0, cut)
            while at >= 0:
                start = data.rfind(b"\n", 0, at) + 1
                end = data.find(b"\n", at)
                line = data[start:end]
                if line.startswith(_HEADS):
                    for account in definers_in(line):
                        self.need(*account)
                at = data.find(b"DEFINER", end, cut)
            rest = data[cut : cut + 4096]  # a line's head is all a definer needs (a long row line: no copies)
            yield block

    def grant(self, databases: list[str]) -> None:
        """After the restore: the made definers get all privileges on the dump's databases."""
        with self.conn.cursor() as cur:
            for user, host in self.created:
                for db in databases:
                    grant = f"GRANT ALL PRIVILEGES ON {quote(db).replace('%', '%%')}.* TO %s@%s"
                    cur.execute(grant, (user, host))

    def close(self) -> None:
        with contextlib.suppress(pymysql.MySQLError):
            self.conn.close()
