"""The free-text half of an engine run (a mixin of `engine.Engine`): the dictionary of the
database's own originals is read while they are still there, then each `scrub` column's
changed texts are written to a table of (pk, new text) that the table's rewrite joins in."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pymysql

from anonymization import _dictionary, freetext
from anonymization._dictionary import Stored
from anonymization.rules import ColumnRule, Rules
from anonymization.strategies import Dictionaries
from phoenix.db import quote

Progress = Callable[[str, int, int], None]


def _pk(conn: pymysql.Connection, table: str) -> str | None:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = %s AND CONSTRAINT_NAME = 'PRIMARY'",
            (table,),
        )
        cols = [r[0] for r in cur.fetchall()]
    return cols[0] if len(cols) == 1 else None


def may_hold_pii(col: str) -> str:
    """SQL true for every text in which EMAIL_RE, PHONE_RE or IBAN_RE can match (a superset):
    a text without '@', '+' or two letters before two digits has no match."""
    return f"({quote(col)} LIKE '%@%' OR {quote(col)} LIKE '%+%' OR {quote(col)} REGEXP '[A-Za-z]{{2}}[0-9]{{2}}')"


class TextScrub:
    """Needs the engine's conn, rules, schema, keys, dicts, inlined, texts and _exec."""

    conn: pymysql.Connection
    conns: list[pymysql.Connection]
    rules: Rules
    schema: dict
    keys: dict[str, bytes]
    dicts: Dictionaries | None
    inlined: Any  # engine.Inlined
    texts: freetext.TextDictionary
    texts_seconds: float

    def _exec(self, sql: str, args=None) -> None: ...

    def _expr(self, rule: ColumnRule, v: str) -> str:
        raise NotImplementedError  # the engine's

    def _drop_captures(self) -> None:
        for capture in sorted(set(self.inlined.texts.values())):
            self._exec(f"DROP TABLE IF EXISTS {quote(capture)}")

    def read_texts(self) -> None:
        """The dictionary of known originals for the free-text scrub, read while the tables
        (or the restore's captures of them) still hold the originals; the captures go then."""
        if freetext.has_scrub(self.rules):
            assert self.dicts is not None
            t0 = time.monotonic()
            self.texts = _dictionary.build(
                self.conns,
                self.rules,
                self.schema,
                lambda strategy, v: self._expr(ColumnRule(strategy), v),
                self.inlined.texts,
                self.inlined.tables,
                skip_names=os.environ.get("PHOENIX_FAULT_SCRUB_SKIP_NAMES") == "1",
                stored=Stored(self.inlined.text_keys, self.inlined.keys),
            )
            self.texts_seconds = time.monotonic() - t0
        self._drop_captures()

    def _scrub(self, t: str, col: str, tmp: str, progress: Progress) -> int:
        """Fill `tmp` with (pk, new text) for the rows of `t` whose `col` changes; returns how many.

        Known originals of the database (freetext.py: full names, e-mails, phones, streets,
        IBANs of ruled columns) become their own pseudonyms; between them, e-mails, phones and
        IBANs that regexes find become the same pseudonyms as in their own columns (the
        Python twins of the SQL strategies). Without known originals only rows that can hold a
        regex match leave the server (a superset test in SQL). Each distinct regex match is
        hashed once (cached); changed texts go in with multi-row INSERTs (was: one UPDATE
        statement per row, 15.3 s for 150 k tickets at 1 GB)."""
        pk = _pk(self.conn, t)
        assert self.dicts is not None and pk is not None
        regex = freetext.regex_scrub(self.keys, self.dicts, self.rules.email_domain)
        texts = self.texts
        candidates = "TRUE" if len(texts) else may_hold_pii(col).replace("%", "%%")  # the query has parameters
        self._exec(f"DROP TABLE IF EXISTS {quote(tmp)}")
        self._exec(
            f"CREATE TABLE {quote(tmp)} ENGINE=InnoDB SELECT {quote(pk)} AS pk, {quote(col)} AS v FROM {quote(t)} LIMIT 0"
        )
        self._exec(f"ALTER TABLE {quote(tmp)} ADD PRIMARY KEY (pk)")
        last, done, n = None, 0, 0
        while True:
            where = f" AND {quote(pk)} > %s" if last is not None else ""
            with self.conn.cursor() as cur:
                cur.execute(
                    f"SELECT {quote(pk)}, {quote(col)} FROM {quote(t)} WHERE {candidates}{where} ORDER BY {quote(pk)} LIMIT 20000",
                    (last,) if last is not None else (),
                )
                rows = cur.fetchall()
            if not rows:
                break
            last = rows[-1][0]
            changed = [
                (key, new)
                for key, text in rows
                if text is not None and (new := texts.replace(text, regex) if len(texts) else regex(text)) != text
            ]
            if changed:
                with self.conn.cursor() as cur:  # pymysql sends these as multi-row INSERTs
                    cur.executemany(f"INSERT INTO {quote(tmp)} (pk, v) VALUES (%s, %s)", changed)
            done, n = done + len(rows), n + len(changed)
            progress(t, done, done)
        return n
