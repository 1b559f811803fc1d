"""What the MySQL 8 translation needs from the breeder: its collations, and the DEFINER
accounts a dump's views, triggers, routines and events run as.

A definer the breeder lacks is made to exist, as a locked account without a password, and is
given all privileges on the dump's databases: the objects keep their DEFINER exactly as the
source has it (a golden's objects equal the source's) and still run for the environment's
own user — an object whose definer does not exist fails every call ("Access denied"). No one
can log in as such an account, and no production password hash is ever copied.
"""

from __future__ import annotations

import contextlib

import pymysql

from phoenix.db import AdminAccess, quote
from phoenix.errors import RestoreError
from tasks.sources._mysql8 import Translator


def collations(conn: pymysql.connections.Connection) -> set[str]:
    """Every collation name the server accepts: MariaDB ≥ 10.10 lists UCA 14.0.0 ones without
    their character set (`uca1400_ai_ci`) in COLLATIONS, with it in FULL_COLLATION_NAME."""
    with conn.cursor() as cur:
        cur.execute("SELECT COLLATION_NAME FROM information_schema.COLLATIONS")
        names = {r[0] for r in cur.fetchall()}
        with contextlib.suppress(pymysql.MySQLError):
            cur.execute("SELECT FULL_COLLATION_NAME FROM information_schema.COLLATION_CHARACTER_SET_APPLICABILITY")
            names |= {r[0] for r in cur.fetchall()}
    return names


class Mysql8Restore:
    """One MySQL 8 dump's restore: its Translator, and the accounts made for its definers."""

    def __init__(self, admin: AdminAccess, where: str) -> None:
        self.conn = pymysql.connect(**admin.pymysql_kwargs(), autocommit=True)
        self.created: list[tuple[str, str]] = []
        self.translator = Translator(collations(self.conn), self._definer, where)

    def _definer(self, user: str, host: str) -> None:
        with self.conn.cursor() as cur:
            cur.execute("SELECT 1 FROM mysql.user WHERE User = %s AND Host = %s", (user, host))
            if cur.fetchone():
                return
            try:
                cur.execute("CREATE USER %s@%s ACCOUNT LOCK", (user, host))
            except pymysql.MySQLError as exc:  # the account's name is not logged: it may be a person's
                raise RestoreError(f"a DEFINER account of the dump cannot be created (error {exc.args[0]})") from None
        self.created.append((user, host))

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
