"""Original values sampled from the database before anything is rewritten, for the gates:
random rows by primary key (`sample`), the forensic gate's identifying originals (`needles_of`,
in clear, in memory only) and the free-text search's full names, e-mails, phones and
streets (`phrases_of`, likewise). Values the engine itself may write are left out of both."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import ahocorasick_rs
import pymysql

from anonymization.forensic import Needles
from anonymization.freetext import EMAIL_RE, IBAN_RE, PHONE_RE, Phrases, name_pair
from anonymization.rules import ColumnRule, Rules
from anonymization.strategies import Dictionaries, drawn_for, may_write
from phoenix.db import quote

SAMPLE = 200  # rows per column for the keyed-hash sample and the phrases


def _q(conn: pymysql.Connection, sql: str, args=None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


_INT_TYPES = {"tinyint", "smallint", "mediumint", "int", "bigint"}


def sample(
    conn: pymysql.Connection, t: str, c: str, cols: dict, n: int = SAMPLE, expr: str | None = None
) -> list[tuple]:
    """About `_SAMPLE` random non-NULL values of column c of table t (the table itself, or
    the sample of its original rows a restore kept, see inline.py). With an integer
    primary key, by point lookups of random keys (no scan: ORDER BY RAND() read and sorted
    whole tables, 9 s of a 1 GB cycle); else, or when the keys are too sparse, the full
    random sort."""
    what = expr or f"{quote(c)}"
    keys = [r[4] for r in _q(conn, f"SHOW KEYS FROM {quote(t)} WHERE Key_name = 'PRIMARY'")]
    if len(keys) == 1 and cols[keys[0]][0] in _INT_TYPES:
        pk = keys[0]
        lo, hi = _q(conn, f"SELECT MIN({quote(pk)}), MAX({quote(pk)}) FROM {quote(t)}")[0]
        if lo is not None:
            rng = random.Random(f"{t}.{c}.{n}")  # deterministic: the same sample for the same data
            ids = sorted({rng.randint(lo, hi) for _ in range(2 * n)})
            rows = _q(
                conn,
                f"SELECT {what} FROM {quote(t)} WHERE {quote(pk)} IN ({','.join(map(str, ids))}) "
                f"AND {what} IS NOT NULL LIMIT {n}",
            )
            if len(rows) >= n // 2:
                return list(rows)
    return list(_q(conn, f"SELECT {what} FROM {quote(t)} WHERE {what} IS NOT NULL ORDER BY RAND(42) LIMIT {n}"))


# Strategies whose originals identify a person on their own: the forensic gate searches the
# image's bytes for a sample of them (single words such as first names or cities do not).
IDENTIFYING = {"email", "phone", "iban", "street", "name"}
NEEDLES_PER_COLUMN = 500


def needles_of(conn, sch: dict, rules: Rules, originals: dict[str, str], fakes: set[str]) -> Needles:
    """A sample of identifying originals per ruled column (full names from first + last name
    columns too), without the values the engine itself may write: dictionary entries (and
    parts of one), pairs of first and last name entries, addresses in the pseudonyms' own
    e-mail domain."""
    own_domain = "@" + rules.email_domain.lower()
    found: list[tuple[str, str]] = []

    def add(value, column: str) -> None:
        text = str(value).strip()
        if text and not text.lower().endswith(own_domain):
            found.append((text, column))

    for t, trule in rules.tables.items():
        if t not in sch or trule.truncate:
            continue
        src = originals.get(t, t)
        cols = trule.columns
        for c, crule in cols.items():
            if c not in sch[t]:
                continue
            if crule.strategy in IDENTIFYING:
                for (v,) in sample(conn, src, c, sch[t], NEEDLES_PER_COLUMN):
                    add(v, f"{t}.{c}")
            elif crule.strategy == "scrub":
                for (v,) in sample(conn, src, c, sch[t], NEEDLES_PER_COLUMN):
                    for rx in (EMAIL_RE, PHONE_RE, IBAN_RE):
                        for m in rx.findall(str(v)):
                            add(m, f"{t}.{c} (inside the text)")
            for path, sub in crule.paths.items():
                if sub.strategy in IDENTIFYING:
                    expr = f"JSON_UNQUOTE(JSON_EXTRACT({quote(c)}, '{path}'))"
                    for (v,) in sample(conn, src, c, sch[t], NEEDLES_PER_COLUMN, expr):
                        add(v, f"{t}.{c}{path.removeprefix('$')}")
        first = next((c for c, r in cols.items() if r.strategy == "first_name" and c in sch[t]), None)
        last = next((c for c, r in cols.items() if r.strategy == "last_name" and c in sch[t]), None)
        if first and last:
            expr = f"CONCAT({quote(first)}, ' ', {quote(last)})"
            for (v,) in sample(conn, src, first, sch[t], NEEDLES_PER_COLUMN, expr):
                f, _, la = str(v).partition(" ")
                if str(v) not in fakes and not (f in fakes and la in fakes):
                    add(v, f"{t}.{first} + {last}")
    # A pseudonym may contain an original ("rue de Clément" inside the fake "54, rue de Clément"):
    # those are found in the bytes without being a leak. One automaton pass over the fakes
    # (a substring search per value read the megabytes of dictionaries thousands of times).
    texts = list(dict.fromkeys(text for text, _ in found))
    inside = set()
    if texts:
        automaton = ahocorasick_rs.AhoCorasick(texts)
        inside = set(automaton.find_matches_as_strings("\n".join(sorted(fakes)), overlapping=True))
    needles = Needles()
    for text, column in found:
        if text not in inside:
            needles.add(text, column)
    needles.discard_inside(fakes)
    return needles


def phrases_of(conn, sch: dict, rules: Rules, originals: dict[str, str], fakes: set[str]) -> Phrases:
    """A sample of original full names (first + last name columns, `name` columns), e-mails,
    phones and streets (a full address in a text holds its street), without values the engine itself may write (as for the needles)."""
    out = Phrases()
    own_domain = "@" + rules.email_domain.lower()
    for t, trule in rules.tables.items():
        if t not in sch or trule.truncate:
            continue
        src, pair = originals.get(t, t), name_pair(trule)
        if pair and all(c in sch[t] for c in pair):
            for (v,) in sample(conn, src, pair[0], sch[t], SAMPLE, f"CONCAT({quote(pair[0])}, ' ', {quote(pair[1])})"):
                f, _, la = str(v).partition(" ")
                if str(v) not in fakes and not (f in fakes and la in fakes):
                    out.add(str(v), f"{t}.{pair[0]} + {pair[1]}")
        for c, r in trule.columns.items():
            if r.strategy in ("name", "email", "phone", "street") and c in sch[t]:
                for (v,) in sample(conn, src, c, sch[t]):
                    text = str(v).strip()
                    if text not in fakes and not text.lower().endswith(own_domain):
                        out.add(text, f"{t}.{c}")
    return out


# Kinds of PII-looking columns whose values identify a person wherever they occur.
_IDENTIFYING_KINDS = {"email", "phone", "iban"}
_WHOLE = (EMAIL_RE, PHONE_RE, IBAN_RE)


def folder(collation: str | None) -> Callable[[str], str]:
    """How a column compares values: case-insensitive collations (`*_ci`) fold case."""
    return str.casefold if collation and "_ci" in collation else str


def hashed_sample(
    conn, sch: dict, rules: Rules, originals: dict[str, str], pii: dict, dicts: list[Dictionaries], collations: dict
) -> Iterator[tuple[str, str]]:
    """(original, column) for the SQL gate's keyed-hash search; column "" = searched in every
    column. Identifying values (e-mails, phones, IBANs, full names, streets, and those inside
    scrubbed texts) are searched everywhere unless the engine draws them (any dictionary);
    single words (first names, cities, postcodes, …) only in their own column, unless the
    engine draws them for that column. Both compared under the column's collation."""
    fakes = {v for d in dicts for vals in d.values.values() for v in vals}
    folded = {str: fakes, str.casefold: {v.casefold() for v in fakes}}
    for (t, c), kind in pii.items():
        if sch[t][c][0] in ("date", "datetime"):
            continue  # dates repeat across rows; date_shift never keeps a row's own date
        crule = column_rule(rules, t, c)
        if crule is not None and not crule.changes:
            continue  # explicitly kept or public: not personal data
        fold = folder(collations.get((t, c)))
        everywhere = kind in _IDENTIFYING_KINDS or (crule is not None and crule.strategy in IDENTIFYING)
        drawn_any = folded[fold]
        drawn_here = {fold(v) for d in dicts for v in drawn_for(crule, d)}
        for (v,) in sample(conn, originals.get(t, t), c, sch[t]):
            text = v.isoformat() if hasattr(v, "isoformat") else str(v)
            if crule is not None and crule.strategy == "scrub":
                yield from ((m, "") for rx in _WHOLE for m in rx.findall(text))
            elif len(text) < 4:
                continue
            elif may_write(crule, text):
                continue  # another row's pseudonym may be this very value
            elif everywhere or any(rx.fullmatch(text) for rx in _WHOLE):
                if fold(text) not in drawn_any:
                    yield text, ""
            elif fold(text) not in drawn_here:
                yield text, f"{t}.{c}"
    yield from _full_names(conn, sch, rules, originals, fakes)
    yield from _full_addresses(conn, sch, rules, originals, fakes)


# How a row's street, postcode and city are written as one value (a shipping label, an
# order's address column): searched everywhere, whole.
_ADDRESS_FORMS = ("{s}, {p} {c}", "{s}, {c} {p}", "{s}, {c}", "{s}\n{p} {c}", "{s}\n{c} {p}")


def _full_addresses(
    conn, sch: dict, rules: Rules, originals: dict[str, str], fakes: set[str]
) -> Iterator[tuple[str, str]]:
    """A row's street with its postcode and/or city, in the usual one-value forms: identifying
    as a whole even where the street alone is common (unless all parts are entries the engine
    draws: a pseudonymized address may be written anywhere)."""
    for t, trule in rules.tables.items():
        parts = address_parts(trule)
        if t not in sch or trule.truncate or not parts or not all(c in sch[t] for c in parts if c):
            continue
        street, postcode, city = parts
        exprs = [f"IFNULL({quote(c)}, '')" if c else "''" for c in parts]
        rows = sample(conn, originals.get(t, t), street, sch[t], SAMPLE, f"CONCAT_WS(CHAR(0), {', '.join(exprs)})")
        for (v,) in rows:
            s, p, c = str(v).split("\0")
            if not s or all(x in fakes for x in (s, p, c) if x):
                continue
            for form in _ADDRESS_FORMS if postcode and city else ("{s}, {p}{c}",):
                yield form.format(s=s, p=p, c=c), ""


def address_parts(trule) -> tuple[str, str, str] | None:
    """The table's street column with its postcode and/or city columns ("" for one missing)."""
    by = {r.strategy: c for c, r in reversed(trule.columns.items())}
    if "street" not in by or not ({"postcode", "city"} & by.keys()):
        return None
    return by["street"], by.get("postcode", ""), by.get("city", "")


def _full_names(conn, sch: dict, rules: Rules, originals: dict[str, str], fakes: set[str]) -> Iterator[tuple[str, str]]:
    """First + last name of a row: identifying, searched everywhere (unless both are entries the
    engine draws: a pseudonymized pair may be written anywhere)."""
    for t, trule in rules.tables.items():
        pair = name_pair(trule)
        if t not in sch or trule.truncate or not pair or not all(c in sch[t] for c in pair):
            continue
        expr = f"CONCAT({quote(pair[0])}, ' ', {quote(pair[1])})"
        for (v,) in sample(conn, originals.get(t, t), pair[0], sch[t], SAMPLE, expr):
            f, _, la = str(v).partition(" ")
            # A pseudonym of a `name` column (a whole dictionary entry) may be written anywhere too.
            if str(v) not in fakes and not (f in fakes and la in fakes):
                yield str(v), ""


def column_rule(rules: Rules, t: str, c: str) -> ColumnRule | None:
    trule = rules.tables.get(t)
    return trule.columns.get(c) if trule else None
