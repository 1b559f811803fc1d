"""The DEFINER accounts a dump's views, triggers, routines and events run as — MySQL 8's and
MariaDB's dumps alike.

A definer the breeder lacks is made to exist, as a locked account without a password, and is
given all privileges on the dump's databases: the objects keep their DEFINER exactly as the
source has it (a golden's objects equal the source's) and still run for the environment's
own user — an object whose definer does not exist fails every call ("The user specified as a
definer does not exist"). No one can log in as such an account, and no production password
hash is ever copied. A MySQL 8 dump's definers are made as the translation meets them; a
MariaDB dump's are read from the restored objects (information_schema) after the restore —
nothing is read from the stream, and a row whose text reads `DEFINER=…` makes no account.
Nothing needs them sooner: mysqldump creates each table's triggers after its rows.
"""

from __future__ import annotations

import contextlib

import pymysql

from phoenix.db import AdminAccess, quote
from phoenix.errors import RestoreError

_OBJECTS = (("TRIGGERS", "TRIGGER_SCHEMA"), ("VIEWS", "TABLE_SCHEMA"), ("ROUTINES", "ROUTINE_SCHEMA"),
            ("EVENTS", "EVENT_SCHEMA"))


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

    def of_objects(self, databases: list[str]) -> None:
        """After a restore: make the definers of the databases' triggers, views, routines and
        events exist. The server has them parsed — no dump text is read for them."""
        if not databases:
            return
        marks = ", ".join(["%s"] * len(databases))
        sql = " UNION ".join(f"SELECT DEFINER FROM information_schema.{view} WHERE {col} IN ({marks})"
                             for view, col in _OBJECTS)
        with self.conn.cursor() as cur:
            cur.execute(sql, databases * len(_OBJECTS))
            accounts = sorted({tuple(r[0].rsplit("@", 1)) for r in cur.fetchall() if r[0] and "@" in r[0]})
        for user, host in accounts:  # a role as definer has no host: nothing to make
            self.need(user, host)

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
