"""The apply's literals (anonymization/_literals.py) are pymysql's own text, fast path or not."""

from __future__ import annotations

import datetime
import decimal

import pymysql
import pytest
from pymysql.constants import SERVER_STATUS

from anonymization._literals import Literals

VALUES = ["plain", "O'Brien", 'say "hi"', "back\\slash", "nul\x00byte", "new\nline", "ümlaut 名前 😀", "", 0, -7,
          2**63 - 1, None, 3.5, decimal.Decimal("12.30"), b"\x00\xff'", datetime.date(2026, 12, 7),
          datetime.datetime(2026, 12, 7, 20, 1, 2, 345)]


@pytest.mark.parametrize("no_backslash", [False, True], ids=["backslash-escapes", "NO_BACKSLASH_ESCAPES"])
def test_every_value_is_pymysqls_literal(no_backslash):
    conn = pymysql.connect(defer_connect=True, charset="utf8mb4")
    conn.server_status = SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES if no_backslash else 0
    lit = Literals(conn)
    assert [lit(v) for v in VALUES] == [conn.escape(v) for v in VALUES]


def test_sets_and_json_and_numbered_rows():
    conn = pymysql.connect(defer_connect=True, charset="utf8mb4")
    conn.server_status = 0
    lit = Literals(conn)
    assert lit({"b", "a"}) == "'a,b'"
    assert lit({"k": [1, "x"]}) == conn.escape('{"k": [1, "x"]}')
    rows = [{"id": 1, "name": "O'Brien"}, {"id": 2, "name": None}]
    assert lit.rows(["name", "id"], rows, 10) == "(10, 'O\\'Brien', 1), (11, NULL, 2)"
