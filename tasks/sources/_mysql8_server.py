"""What the MySQL 8 translation needs from the breeder: its collations, and the DEFINER
accounts a dump's views, triggers, routines and events run as (see _definers.py)."""

from __future__ import annotations

import contextlib

import pymysql

from phoenix.db import AdminAccess
from tasks.sources._definers import Definers
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
    """One MySQL 8 dump's restore: its Translator, and the accounts made for its definers (the
    caller grants and closes them)."""

    def __init__(self, admin: AdminAccess, where: str) -> None:
        self.definers = Definers(admin)
        self.translator = Translator(collations(self.definers.conn), self.definers.need, where)
