"""The free-text dictionary read from the database (freetext.py holds what it is for): each
ruled identifying column's (original, pseudonym) pairs and the full names' (first + last).

Originals and their pseudonyms travel as few long strings, not one row each: pymysql
parses ~15 µs per row (the 1 GB shop has 1.5 M originals). The server computes the
pseudonyms with the engine's own SQL, on as many sessions as the run has — or reads them:

A table anonymized during the restore (inline.py) already holds each row's pseudonyms;
its capture of the originals (`_phx_text_<table>`) also holds the row's primary key. Joined
on it, a capture row gives (original, pseudonym written into that row): the keyed hash,
computed in SQL for each row of the dictionary (issue 11: most of the 1 GB shop's anonymize
step went into this dictionary), is not computed a second time.

The dictionary must be the same as when every pseudonym is computed (freetext.py), so a
row's stored value is used only where it is that computed pseudonym, and computed where it
may not be:

- not at all for a column whose rule has a `where` (a row may keep its original), that is
  no varchar/text (CHAR drops trailing spaces; other types convert) or not utf8mb4 (a
  restore's literal and the column's value can differ), nor for a table whose primary key
  is ruled (the stored key is a pseudonym), that has none, or that the restore filled with
  INSERT IGNORE/REPLACE (a capture row may join another row): inline.py records no key then;
- row by row where the stored value is missing (no such row), may have been cut to the
  column's length (`LEFT`, the engine's `_column_sql`), may be a unique key's collision
  variant (rewrite.py `may_be_variant`; the keys are added while this runs), or is an
  e-mail whose original is not ASCII (LOWER folds case by the collation: the restore's
  literal and the capture's column have different ones).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pymysql

from anonymization.freetext import IN_TEXT, TextDictionary, capture_columns, name_pair
from anonymization.rewrite import may_be_variant, unique_columns
from anonymization.rules import Rules
from phoenix.db import quote
from phoenix.errors import AnonymizationError

_US, _RS = "\x1f", "\x1e"
_CHUNK = 20_000
_PART = 250_000  # rows of a capture joined in one query: ~50 MB of pairs (the server allows 1 GB)
Pseudonym = Callable[[str, str], str]  # (strategy, SQL of the original) -> SQL of its pseudonym
Pairs = dict[str, str]  # original -> pseudonym
_SEPARATOR = (
    "free-text dictionary: an original holds a control character (0x1e or 0x1f) used as its separator; "
    "remove it from the source or rule the column `keep`"
)
Fetch = Callable[[pymysql.Connection], list[Pairs]]  # one query's pairs, per item it reads
_TYPES = {"varchar", "tinytext", "text", "mediumtext", "longtext"}


def _exact(expr: str) -> str:
    """`expr` compared byte for byte: the columns' collations fold case and accents, so a
    DISTINCT that followed them kept "Clément" and dropped "Clement"."""
    return f"CONVERT({expr} USING utf8mb4) COLLATE utf8mb4_bin"


def _pairs_sql(src: str, cols: list[str], original: str, pseudonym: str, rows: int) -> str:
    """(original, pseudonym) of every row of `src` (FROM), in chunks of about `_CHUNK` (a hash
    of the value picks the chunk); `cols`: the originals' SQL, rows with a NULL one are left
    out. No DISTINCT: it cost 3× the rest (measured); the dict drops repeats."""
    nonnull = " AND ".join(f"{c} IS NOT NULL" for c in cols)
    o = _exact(original)
    return (
        f"SELECT GROUP_CONCAT(CONCAT({o}, CHAR(31), {pseudonym}) SEPARATOR 0x1e), "
        f"SUM(LOCATE(CHAR(31), {o}) + LOCATE(CHAR(30), {o})) "
        f"FROM {src} WHERE {nonnull} GROUP BY CRC32({o}) MOD {max(1, -(-rows // _CHUNK))}"
    )


def _rows(conn: pymysql.Connection, src: str) -> int:
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM {quote(src)}")
        return int(cur.fetchone()[0])


def _fetch(conn: pymysql.Connection, sql: str) -> Pairs:
    with conn.cursor() as cur:
        cur.execute("SET SESSION group_concat_max_len = 1073741824")
        cur.execute(sql)
        chunks = cur.fetchall()
    if any(bad for _, bad in chunks):  # a separator inside a value: never guess where it ends
        raise AnonymizationError(_SEPARATOR)
    return _pairs([chunk for chunk, _ in chunks if chunk])


def _pairs(chunks: list[str]) -> Pairs:
    """original -> pseudonym from lists `o 0x1f p 0x1e o 0x1f p …` without a separator inside
    a value: split in C, not item by item (that was most of the Python side's time). One
    item's repeats carry the same pseudonym (a function of the original), so a dict keeps
    what a first-wins loop keeps."""
    pairs: Pairs = {}
    for chunk in chunks:
        it = iter(chunk.replace(_RS, _US).split(_US))
        pairs.update(zip(it, it, strict=True))
    return pairs


def build(
    conns: list[pymysql.Connection],
    rules: Rules,
    schema: dict,
    pseudonym: Pseudonym,
    sources: dict[str, str],
    gone: set[str],
    skip_names: bool = False,
    stored: Stored | None = None,
) -> TextDictionary:
    """The run's dictionary from the originals: of each table itself, or of its capture
    table in `sources`; tables in `gone` hold pseudonyms already and no capture (skipped).
    Pairs first: a full name known as first + last and as a `name` value gets the pair's
    pseudonym. `pseudonym` is the engine's SQL, so texts get the same fakes as the rows;
    with `stored`, a capture's pseudonyms are read from its table's rows where they are
    that SQL's (see the module's doc), not computed again: the same dictionary, sooner."""
    rows = functools.cache(lambda src: _rows(conns[0], src))
    items = _items(rules, schema, sources, gone, skip_names)
    read = stored.readings(conns[0], rules, schema, sources, pseudonym) if stored else {}
    jobs: list[tuple[Fetch, list[int]]] = []
    joined: dict[str, list[int]] = {}
    for i, (t, src, cols, strategies) in enumerate(items):
        if t in read and read[t].covers(cols):
            joined.setdefault(t, []).append(i)
            continue
        rd = Reading(src, pseudonym)  # computed: today's query, the fallback
        original, fake = _item_sql(rd, cols, strategies)
        sql = _pairs_sql(rd.source(), [rd.col(c) for c in cols], original, fake, rows(src))
        jobs.append((functools.partial(_fetch_one, sql=sql), [i]))
    for t, idx in joined.items():  # one query per table and part: its rows are joined once
        rd = read[t]
        parts = max(len(conns), -(-rows(rd.src) // _PART))
        for sql in rd.queries([_item_sql(rd, items[i][2], items[i][3]) for i in idx], parts):
            jobs.append((functools.partial(fetch_joined, sql=sql, items=len(idx)), idx))
    return _collect(conns, jobs, len(items))


def _items(
    rules: Rules, schema: dict, sources: dict[str, str], gone: set[str], skip_names: bool
) -> list[tuple[str, str, list[str], list[str]]]:
    """What the dictionary reads, in its order (pairs first): (table, source, columns, strategies)."""
    tables = [
        (t, r, sources.get(t, t))
        for t, r in rules.tables.items()
        if not r.truncate and t in schema and capture_columns(r) and (t in sources or t not in gone)
    ]
    items = []
    for t, trule, src in tables:
        pair = name_pair(trule)
        if pair and not skip_names and all(c in schema[t] for c in pair):
            items.append((t, src, list(pair), ["first_name", "last_name"]))
    for t, trule, src in tables:
        for c, r in trule.columns.items():
            if r.strategy in IN_TEXT and c in schema[t] and not (skip_names and r.strategy == "name"):
                items.append((t, src, [c], [r.strategy]))
    return items


def _item_sql(rd: Reading, cols: list[str], strategies: list[str]) -> tuple[str, str]:
    """SQL of an item's original and pseudonym: of one column, or of a first + last name."""
    if len(cols) == 1:
        return rd.col(cols[0]), rd.pseudonym(strategies[0], cols[0])
    f, la = cols
    return (
        f"CONCAT({rd.col(f)}, ' ', {rd.col(la)})",
        f"CONCAT({rd.pseudonym(strategies[0], f)}, ' ', {rd.pseudonym(strategies[1], la)})",
    )


def _fetch_one(conn: pymysql.Connection, sql: str) -> list[Pairs]:
    return [_fetch(conn, sql)]


def _collect(conns: list[pymysql.Connection], jobs: list[tuple[Fetch, list[int]]], n_items: int) -> TextDictionary:
    """The jobs' pairs, read on as many sessions as there are, added in the items' order."""
    n = max(1, min(len(conns), len(jobs)))

    def run(k: int) -> list[list[Pairs]]:  # one thread per session: a session is not shared
        return [fetch(conns[k]) for fetch, _ in jobs[k::n]]

    with ThreadPoolExecutor(n) as pool:
        per_conn = list(pool.map(run, range(n)))
    found: list[list[Pairs]] = [[] for _ in range(n_items)]
    for k, (_, idx) in enumerate(jobs):
        for i, pairs in zip(idx, per_conn[k % n][k // n], strict=True):
            found[i].append(pairs)
    d = TextDictionary()
    for parts in found:  # in the items' order: pairs first
        for pairs in parts:
            d.update(pairs)
    return d


class Reading:
    """How one table's (original, pseudonym) pairs are read: the originals as `c.<column>`."""

    def __init__(self, src: str, compute: Pseudonym) -> None:
        self.src, self._compute = src, compute

    def col(self, column: str) -> str:
        return f"c.{quote(column)}"

    def source(self) -> str:
        return f"{quote(self.src)} c"

    def pseudonym(self, strategy: str, column: str) -> str:
        return self._compute(strategy, self.col(column))


class Joined(Reading):
    """A capture joined to its table on the primary key: `m.<column>` where it is the pseudonym."""

    def __init__(self, src: str, compute: Pseudonym, table: str, keys: list[str], stored: dict[str, str]) -> None:
        super().__init__(src, compute)
        self.table, self.keys = table, keys
        self.stored = stored  # column -> SQL true where the row's value is the computed pseudonym

    def covers(self, columns: list[str]) -> bool:
        return all(c in self.stored for c in columns)

    def pseudonym(self, strategy: str, column: str) -> str:
        return f"IF({self.stored[column]}, m.{quote(column)}, {super().pseudonym(strategy, column)})"

    def queries(self, items: list[tuple[str, str]], parts: int) -> list[str]:
        """The (original, pseudonym) lists of several items at once, each with its count, in
        `parts` queries: the rows are joined once, not once per item, in the capture's order
        (the restore's: the key's). Each part filters the capture by a hash of its key (a scan
        costs ~0.1 µs a row): a GROUP BY would sort the joined rows, which took half of the
        time (measured), and the parts run on the sessions side by side."""
        lists = ", ".join(
            f"GROUP_CONCAT(CONCAT({_exact(o)}, CHAR(31), {p}) SEPARATOR 0x1e), COUNT({o})" for o, p in items
        )
        on = " AND ".join(f"m.{quote(k)} = c.{quote(k)}" for k in self.keys)
        key = f"CRC32(CONCAT_WS(',', {', '.join(f'c.{quote(k)}' for k in self.keys)}))"
        src = f"SELECT {lists} FROM {quote(self.src)} c LEFT JOIN {quote(self.table)} m ON {on}"
        return [src if parts == 1 else f"{src} WHERE {key} MOD {parts} = {j}" for j in range(parts)]


def fetch_joined(conn: pymysql.Connection, sql: str, items: int) -> list[Pairs]:
    """The pairs of one of `Joined.queries`, per item. An original holding a separator is found by
    counting them (cheaper than searching every value in SQL): each list has one 0x1f per
    pair and one 0x1e between two."""
    with conn.cursor() as cur:
        cur.execute("SET SESSION group_concat_max_len = 1073741824")
        cur.execute(sql)
        chunks = cur.fetchall()
    lists: list[list[str]] = [[] for _ in range(items)]
    for row in chunks:
        for i in range(items):
            chunk, n = row[2 * i] or "", int(row[2 * i + 1])
            if chunk.count(_US) != n or chunk.count(_RS) != max(0, n - 1):
                raise AnonymizationError(_SEPARATOR)
            if n:
                lists[i].append(chunk)
    return [_pairs(chunk) for chunk in lists]


def _charsets(conn: pymysql.Connection, tables: list[str]) -> dict[tuple[str, str], str | None]:
    if not tables:
        return {}
    with conn.cursor() as cur:
        cur.execute(
            "SELECT TABLE_NAME, COLUMN_NAME, CHARACTER_SET_NAME FROM information_schema.COLUMNS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN (" + ", ".join(["%s"] * len(tables)) + ")",
            tables,
        )
        return {(t, c): cs for t, c, cs in cur.fetchall()}


def _trusted(column: str, strategy: str, maxlen: int | None, unique: bool) -> str:
    """SQL true where the joined row's value of `column` is its computed pseudonym."""
    m, c = f"m.{quote(column)}", f"c.{quote(column)}"
    conds = [f"{m} IS NOT NULL"]
    if maxlen:
        conds.append(f"CHAR_LENGTH({m}) < {maxlen}")
    if unique:
        conds.append(f"NOT ({may_be_variant(m)})")
    if strategy == "email":
        conds.append(f"LENGTH({c}) = CHAR_LENGTH({c})")
    return " AND ".join(conds)


@dataclass
class Stored:
    """What lets a capture be joined to its table: `keys`, the primary-key columns each
    capture holds (inline.py); `held`, the key definitions the restore held back (their
    unique columns may change while the dictionary is read)."""

    keys: dict[str, list[str]]
    held: dict[str, list[str]]

    def readings(
        self,
        conn: pymysql.Connection,
        rules: Rules,
        schema: dict,
        sources: dict[str, str],
        compute: Pseudonym,
    ) -> dict[str, Joined]:
        """table -> its capture joined to it, for the tables read from a capture (`sources`)
        that can be (the others' pseudonyms are computed)."""
        charsets = _charsets(conn, sorted(t for t in sources if self.keys.get(t)))
        out: dict[str, Joined] = {}
        for t, src in sources.items():
            keys = self.keys.get(t)
            if not keys or t not in rules.tables or t not in schema:
                continue
            unique = {c for cols in unique_columns(self.held.get(t, [])) for c in cols}
            stored = {
                c: _trusted(c, r.strategy, schema[t][c][1], c in unique)
                for c, r in rules.tables[t].columns.items()
                if r.strategy in IN_TEXT + ("first_name", "last_name")
                and not r.where
                and c in schema[t]
                and schema[t][c][0] in _TYPES
                and charsets.get((t, c)) == "utf8mb4"
            }
            if stored:
                out[t] = Joined(src, compute, t, keys, stored)
        return out
