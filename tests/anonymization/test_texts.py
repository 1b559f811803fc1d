"""The gate's free texts read as joined pages (anonymization/_texts.py), on a real MariaDB:
the same texts as row by row — across pages, without NULLs, under conditions, keyed by a
string or by nothing — and row by row where a page cannot be joined (a separator inside a
text, a string the server cut)."""

from __future__ import annotations

import pymysql
import pytest

from anonymization import _texts
from anonymization._texts import SEPARATOR, joined_texts
from tests.anonymization.test_rewrite import q

TEXTS = [None if i % 5 == 0 else f"Hello, this is Ñúñez #{i}: ada{i}@example.com, +49 30 {i:06d}" for i in range(1, 26)]


@pytest.fixture
def conn(mariadb):
    q(mariadb, None, "CREATE DATABASE t CHARACTER SET utf8mb4")
    q(
        mariadb,
        "t",
        "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT)",
        "CREATE TABLE tagged (tag VARCHAR(20) PRIMARY KEY, body MEDIUMTEXT)",
        "CREATE TABLE loose (body TEXT)",
    )
    c = pymysql.connect(**mariadb.admin().pymysql_kwargs(), database="t", autocommit=True)
    with c.cursor() as cur:
        rows = list(enumerate(TEXTS, 1))
        cur.executemany("INSERT INTO notes VALUES (%s, %s)", rows)
        cur.executemany("INSERT INTO tagged VALUES (%s, %s)", [(f"k{i:03d}", t) for i, t in rows])
        cur.executemany("INSERT INTO loose VALUES (%s)", TEXTS)
    yield c
    c.close()


def split(out: list[str]) -> list[str]:
    return [t for s in out for t in s.split(SEPARATOR)]


@pytest.fixture(autouse=True)
def small_pages(monkeypatch):
    monkeypatch.setattr(_texts, "PAGE", 4)


def test_pages_hold_the_rows_texts_in_key_order(conn):
    out = list(joined_texts(conn, "notes", "body", []))
    assert split(out) == [t for t in TEXTS if t is not None]
    assert len(out) == 6  # 25 rows in pages of 4 (the last holds only a NULL): joined, not a string per text


def test_conditions_and_a_string_key(conn):
    out = list(joined_texts(conn, "tagged", "body", ["tag > 'k010'", "body LIKE '%5%'"]))
    assert split(out) == [t for i, t in enumerate(TEXTS, 1) if t is not None and i > 10 and "5" in t]


def test_a_table_without_a_key_is_read_row_by_row(conn):
    assert list(joined_texts(conn, "loose", "body", [])) == [t for t in TEXTS if t is not None]


def test_a_text_holding_the_separator_is_read_whole(conn):
    inner = f"first part{SEPARATOR}second part, ada@example.com"
    with conn.cursor() as cur:
        cur.execute("UPDATE notes SET body = %s WHERE id = 6", (inner,))
    out = list(joined_texts(conn, "notes", "body", []))
    assert inner in out  # its page row by row: a search sees the text as it is
    expected = [inner if i == 6 else t for i, t in enumerate(TEXTS, 1) if t is not None]
    assert split(out) == [p for t in expected for p in t.split(SEPARATOR)]


def test_a_string_the_server_cuts_falls_back_to_the_rows(conn, monkeypatch):
    monkeypatch.setattr(_texts, "JOINED_MAX", 64)  # shorter than any page of 4 texts
    assert list(joined_texts(conn, "notes", "body", [])) == [t for t in TEXTS if t is not None]
