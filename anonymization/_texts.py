"""A column's texts read as few long strings, for the gate's search inside free text.

pymysql parses ~15 µs per row, and the gate read every text row by row: on the 1 GB shop
that was most of its 10-14 s per text column (500 k JSON profiles, 150 k ticket bodies), in
Python on one GIL. Here the server joins a page of rows with a record separator (0x1e) and
sends one string. A search that no match crosses the separator in — the gate's regexes
(their classes exclude it) and the word-bounded phrase search (it is no word character) —
finds in a page exactly what it finds in the page's rows one by one.

A page is read row by row instead when it cannot be joined safely: a text that holds the
separator itself, or a joined string that is not the sum of its rows (cut by the server's
limits). A table without a one-column primary key is read row by row.
"""

from __future__ import annotations

from collections.abc import Iterator

import pymysql

from phoenix.db import quote

SEPARATOR = "\x1e"
PAGE = 10_000  # rows per string: a few MB of text, well under the server's 16 MB packet
JOINED_MAX = 1 << 30  # group_concat_max_len: longer strings are cut (and the page read row by row)


def _pk(conn: pymysql.Connection, table: str) -> str | None:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = %s AND CONSTRAINT_NAME = 'PRIMARY'",
            (table,),
        )
        cols = [r[0] for r in cur.fetchall()]
    return cols[0] if len(cols) == 1 else None


def _rows(conn: pymysql.Connection, sql: str) -> Iterator[str]:
    with conn.cursor(pymysql.cursors.SSCursor) as cur:
        cur.execute(sql)
        for (text,) in cur:
            if text is not None:
                yield text


def joined_texts(conn: pymysql.Connection, table: str, column: str, conditions: list[str]) -> Iterator[str]:
    """The non-NULL texts of `table.column` where all `conditions` (SQL) hold: pages of them
    joined by SEPARATOR, or single texts where a page cannot be joined (see the module)."""
    t, c = quote(table), quote(column)
    pk = _pk(conn, table)
    if pk is None:
        where = " WHERE " + " AND ".join(f"({w})" for w in conditions) if conditions else ""
        yield from _rows(conn, f"SELECT {c} FROM {t}{where}")
        return
    k = quote(pk)
    with conn.cursor() as cur:
        cur.execute(f"SET SESSION group_concat_max_len = {JOINED_MAX}")
    last = None
    while True:
        conds = [*conditions, *([f"{k} > {conn.escape(last)}"] if last is not None else [])]
        where = " WHERE " + " AND ".join(f"({w})" for w in conds) if conds else ""
        page = f"SELECT {k} AS k, {c} AS v FROM {t}{where} ORDER BY {k} LIMIT {PAGE}"
        with conn.cursor() as cur:
            cur.execute(
                "SELECT GROUP_CONCAT(v SEPARATOR 0x1e), COUNT(*), MAX(k), COUNT(v), "
                f"IFNULL(SUM(CHAR_LENGTH(v)), 0), IFNULL(SUM(LOCATE(CHAR(30), v) > 0), 0) FROM ({page}) x"
            )
            joined, rows, last, texts, chars, inside = cur.fetchone()
        if not rows:
            return
        if not texts:
            continue
        if isinstance(joined, str) and not inside and len(joined) == chars + texts - 1:
            yield joined
        else:  # a separator inside a text, or a string the server cut: this page row by row
            yield from _rows(conn, f"SELECT v FROM ({page}) x")
