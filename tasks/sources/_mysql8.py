"""A MySQL 8.0/8.4 dump, translated for the MariaDB breeder on its way in.

MySQL 8's `mysqldump` writes syntax MariaDB has not: `_0900_` collations, GTID and binary-log
session statements, accounts hashed with `caching_sha2_password`, `/*!8xxxx … */` comments
(MariaDB reads 50700–99999 as plain comments, so an `INVISIBLE` column would silently turn
visible), functional indexes. A dump is detected by its header (`-- MySQL dump … Distrib 8.`)
and only then translated; row statements (`INSERT`/`REPLACE`, one line each in a mysqldump)
are never looked into — only the statement heads and DDL around them, with small regexes.

`Translator.text` rewrites dump text of whole lines (the client path); `Translator.statements`
rewrites a statement stream (the statement-by-statement path): the same rules for both.
The README's "MySQL 8 dumps" table lists every rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from phoenix.errors import RestoreError

Statements = Iterator[tuple[int, bytes]]
ROWS = (b"INSERT ", b"REPLACE ")
_HEADER = re.compile(rb"\A-- MySQL dump [\d.]+\s+Distrib (\d+)\.(\d+)")

# Whole statements dropped. GTID and binary-log state belong to the source's replication, not
# to a breeder; accounts and grants are Phoenix's (production's password hashes never enter a
# golden — the definers a dump's objects need are made as locked accounts instead).
_DROPPED = (rb"SET @@GLOBAL\.GTID_PURGED\b|SET @MYSQLDUMP_TEMP_LOG_BIN\b|SET @@SESSION\.SQL_LOG_BIN\b"
            rb"|CREATE USER\b|ALTER USER\b|GRANT\b|REVOKE\b|CREATE ROLE\b|SET DEFAULT ROLE\b")
_DROP_HEAD = re.compile(rb"\s*(?:" + _DROPPED + rb")", re.I)
_DROP_LINES = re.compile(rb"^(?:" + _DROPPED + rb").*?;[ \t]*(?:\n|\Z)", re.I | re.M | re.S)

_COLLATION = re.compile(rb"\butf8mb4_(?:([a-z]+(?:_[a-z]+)?)_)?0900_(ai_ci|as_ci|as_cs|bin)\b")
# MySQL's language tags → MariaDB's UCA 14.0.0 tailorings (the languages both have).
LANGUAGES = {b"cs": "czech", b"da": "danish", b"de_pb": "german2", b"eo": "esperanto", b"es": "spanish",
             b"es_trad": "spanish2", b"et": "estonian", b"hr": "croatian", b"hu": "hungarian", b"is": "icelandic",
             b"la": "roman", b"lt": "lithuanian", b"lv": "latvian", b"pl": "polish", b"ro": "romanian",
             b"sk": "slovak", b"sl": "slovenian", b"sv": "swedish", b"tr": "turkish", b"vi": "vietnamese"}

_INVISIBLE_INDEX = re.compile(rb"^(\s*(?:UNIQUE |FULLTEXT |SPATIAL )?KEY .*?)/\*!80000 INVISIBLE \*/", re.M)
_INVISIBLE_COLUMN = re.compile(rb"/\*!80023 INVISIBLE \*/")
# A key part that is an expression: `((lower(col)))`, or `(`a`,(expr))`.
_FUNCTIONAL_KEY = re.compile(rb"^\s*(?:UNIQUE |FULLTEXT |SPATIAL )?KEY `((?:[^`]|``)+)` "
                             rb"\((?:`(?:[^`]|``)+`(?:\(\d+\))?(?: (?:ASC|DESC))?,)*\(", re.M)
_CREATE_TABLE = re.compile(rb"CREATE TABLE (?:IF NOT EXISTS )?`((?:[^`]|``)+)`")
_DEFINER = re.compile(rb"DEFINER\s*=\s*(`(?:[^`]|``)*`|'(?:[^'\\]|\\.)*')@(`(?:[^`]|``)*`|'(?:[^'\\]|\\.)*')")
# An unenforced CHECK (MySQL ≥ 8.0.16; MariaDB has no NOT ENFORCED and would enforce it): its
# line; then the comma of a definition left last before the table's `) ENGINE=`.
_UNENFORCED = re.compile(rb"\n[ \t]*CONSTRAINT `((?:[^`]|``)+)` CHECK \(.*\) /\*!80016 NOT ENFORCED \*/,?(?=\n)")
_LAST_COMMA = re.compile(rb",(\n(?:[ \t]*\n)*\) ENGINE=)")
_SQL_MODE_TTF = re.compile(rb",TIME_TRUNCATE_FRACTIONAL\b|\bTIME_TRUNCATE_FRACTIONAL,?")
# What MariaDB would skip anyway (50700–99999, read as plain comments): removed, so no
# MySQL-only syntax reaches the server at all — e.g. `/*!80016 DEFAULT ENCRYPTION='N' */`,
# `/*!80013 … */`, `/*!80003 SRID 4326 */`, Percona's `/*!50717 … */` statements.
_MYSQL_ONLY = re.compile(rb"[ \t]*/\*!(?:50[7-9]\d\d|5[1-9]\d{3}|[6-9]\d{4})\b.*?\*/", re.S)
_CHEAP = (b"/*!", b"0900_", b"DEFINER", b"KEY `", b"TIME_TRUNCATE_FRACTIONAL")


def _blank(m: re.Match[bytes]) -> bytes:
    """What is removed leaves its newlines: the client's line numbers stay the dump's."""
    return b"\n" * m.group(0).count(b"\n")


def is_mysql8(head: bytes) -> bool:
    """Whether a dump's first bytes are MySQL 8's (or later) mysqldump header."""
    m = _HEADER.match(head)
    return bool(m) and int(m.group(1)) >= 8


def map_collation(name: bytes, known: set[str]) -> str | None:
    """The MariaDB collation for a MySQL `_0900_` one, or None when this server has none.
    MySQL's 0900 collations are NO PAD (trailing spaces count, also in unique keys), so the
    NO PAD variant of UCA 14.0.0 is the faithful one; UCA 5.2.0 where a server lacks 14."""
    text = name.decode()
    if text in known:  # a MariaDB that knows the MySQL name itself
        return text
    m = _COLLATION.fullmatch(name)
    if not m:
        return None
    lang, variant = m.group(1), m.group(2).decode()
    if lang is None and variant == "bin":
        candidates = ["utf8mb4_nopad_bin", "utf8mb4_bin"]
    elif lang is None:
        candidates = [f"utf8mb4_uca1400_nopad_{variant}"]
        candidates += ["utf8mb4_unicode_520_nopad_ci"] if variant.endswith("_ci") else []
    elif lang in LANGUAGES and variant != "bin":
        candidates = [f"utf8mb4_uca1400_{LANGUAGES[lang]}_nopad_{variant}"]
    else:
        candidates = []
    return next((c for c in candidates if c in known), None)


def _ident(raw: bytes) -> str:
    """A backquoted name's text (without its quotes)."""
    return raw.replace(b"``", b"`").decode("utf-8", "replace")


def definers_in(text: bytes) -> Iterator[tuple[str, str]]:
    """The (user, host) of each `DEFINER=` in `text`."""
    for m in _DEFINER.finditer(text):
        yield _unquote(m.group(1)), _unquote(m.group(2))


def _unquote(quoted: bytes) -> str:
    q, body = quoted[:1], quoted[1:-1]
    text = body.replace(b"``", b"`") if q == b"`" else re.sub(rb"\\(.)", rb"\1", body).replace(b"''", b"'")
    return text.decode("utf-8", "replace")


class Translator:
    """Rewrites a MySQL 8 dump's statements for MariaDB. `known`: the server's collation names;
    `on_definer(user, host)`: called once per DEFINER account the dump names (the restore makes
    it exist); `where`: the source, for errors."""

    def __init__(self, known: set[str], on_definer: Callable[[str, str], None], where: str) -> None:
        self.known, self.on_definer, self.where = known, on_definer, where
        self.table: str | None = None  # the last CREATE TABLE seen (a statement may span blocks)
        self._definers: set[tuple[str, str]] = set()
        self._collations: dict[bytes, bytes] = {}
        self.notes: list[str] = []  # what the translation changed that a report should say

    # -- the statement-by-statement path ------------------------------------------------------
    def statements(self, stmts: Statements) -> Statements:
        for line, stmt in stmts:
            if stmt.startswith(ROWS):  # rows: the bulk of a dump, passed on untouched
                yield line, stmt
                continue
            if _DROP_HEAD.match(stmt):
                continue
            out = self.rewrite(stmt, line)
            if out.strip():
                yield line, out

    # -- the client path: whole lines of non-row text -----------------------------------------
    def text(self, chunk: bytes, line: int, session: bool) -> bytes:
        """`chunk` is whole lines from `line` on; `session`: the delimiter is `;`, so a line
        start is a statement start (not inside a routine's body)."""
        chunk = self.rewrite(chunk, line)  # first: its errors count lines of the dump as it is
        if session and (b"SET @" in chunk or b"USER" in chunk or b"GRANT" in chunk or b"ROLE" in chunk
                        or b"REVOKE" in chunk):
            chunk = _DROP_LINES.sub(_blank, chunk)
        return chunk

    # -- the rules, shared --------------------------------------------------------------------
    def rewrite(self, text: bytes, line: int) -> bytes:
        if not any(c in text for c in _CHEAP):
            return text
        for account in definers_in(text):
            if account not in self._definers:
                self._definers.add(account)
                self.on_definer(*account)
        self._check_keys(text, line)
        if b"0900_" in text:
            text = _COLLATION.sub(lambda m: self._collation(m, text, line), text)
        if b"/*!" in text:
            if b"NOT ENFORCED" in text:
                text = self._unenforced(text)
            text = _INVISIBLE_INDEX.sub(rb"\1IGNORED", text)
            text = _INVISIBLE_COLUMN.sub(b"INVISIBLE", text)
            text = _MYSQL_ONLY.sub(_blank, text)
        if b"TIME_TRUNCATE_FRACTIONAL" in text:
            text = _SQL_MODE_TTF.sub(b"", text)  # a MySQL 8 sql_mode MariaDB has not
        return text

    def _check_keys(self, text: bytes, line: int) -> None:
        tables = list(_CREATE_TABLE.finditer(text))
        m = _FUNCTIONAL_KEY.search(text) if b"KEY `" in text else None
        if m:
            before = [t for t in tables if t.start() < m.start()]
            table = _ident(before[-1].group(1)) if before else self.table
            at = line + text.count(b"\n", 0, m.end())
            raise RestoreError(
                f"{self.where}: line {at}: table `{table}` has a functional "
                f"index `{_ident(m.group(1))}` (an expression as key part), which MariaDB cannot create; on the "
                "source, index a generated column instead (ADD COLUMN c … AS (expr) VIRTUAL, KEY (c)), or dump "
                "without that index")
        if tables:
            self.table = _ident(tables[-1].group(1))

    def _unenforced(self, text: bytes) -> bytes:
        """Drop each unenforced CHECK: it never constrained the source's rows, and enforced by
        MariaDB it could refuse them or give the constraint another meaning. Its line stays,
        blank (the client's line numbers stay the dump's)."""
        tables = list(_CREATE_TABLE.finditer(text))

        def drop(m: re.Match[bytes]) -> bytes:
            before = [t for t in tables if t.start() < m.start()]
            table = _ident(before[-1].group(1)) if before else self.table
            self.notes.append(f"table `{table}`: CHECK constraint `{_ident(m.group(1))}` dropped (NOT ENFORCED "
                              "in MySQL, so it never constrained the data; MariaDB would enforce it)")
            return b"\n"

        out = _UNENFORCED.sub(drop, text)
        return _LAST_COMMA.sub(rb"\1", out) if out != text else out

    def _collation(self, m: re.Match[bytes], text: bytes, line: int) -> bytes:
        name = m.group(0)
        if name not in self._collations:
            mapped = map_collation(name, self.known)
            if mapped is None:
                at = line + text.count(b"\n", 0, m.start())
                raise RestoreError(
                    f"{self.where}: line {at}: collation {name.decode()} has no MariaDB equivalent on this server; "
                    "convert those columns on the source (e.g. to utf8mb4_0900_ai_ci) before dumping")
            self._collations[name] = mapped.encode()
        return self._collations[name]
