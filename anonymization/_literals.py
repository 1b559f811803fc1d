"""A binary log's row values as SQL literals for one session: pymysql's text (`escape`),
with the common types past its generic dispatch (a third of the apply's CPU went there).
Strings take the fast path only where backslashes escape (the session's sql_mode), as
pymysql's `escape_string` then does."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pymysql
from pymysql.constants import SERVER_STATUS
from pymysql.converters import escape_string


class Literals:
    def __init__(self, conn: pymysql.Connection) -> None:
        self._conn = conn
        self._fast: dict[type, Callable[[Any], str]] = {int: int.__str__, type(None): lambda _v: "NULL"}
        if not conn.server_status & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES:
            self._fast[str] = lambda v: "'" + escape_string(v) + "'"

    def __call__(self, v: Any) -> str:
        fast = self._fast.get(type(v))
        if fast is not None:
            return fast(v)
        if isinstance(v, set):  # a SET column comes as a set of its members
            v = ",".join(sorted(v))
        elif isinstance(v, dict | list):  # a JSON column, decoded by the reader
            v = json.dumps(v)
        return self._conn.escape(v)

    def rows(self, cols: list[str], rows: list[dict], first: int) -> str:
        """`(n, v1, v2, …), …`: the rows as literals, numbered from `first`."""
        lit = self.__call__
        return ", ".join(f"({first + i}, " + ", ".join([lit(r[c]) for c in cols]) + ")" for i, r in enumerate(rows))
