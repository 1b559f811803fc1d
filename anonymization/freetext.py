"""Known originals inside free text: the database's own identifying values, replaced by
their own pseudonyms wherever they occur in a `scrub` column, and searched for by the gate.

A ticket says "Hello, this is Ada Derek": no regex finds a name, but the database knows
it — customers.first_name/last_name hold "Ada"/"Derek". Once per run, every original of
a ruled identifying column (full names as first + last, `name` columns, e-mails, phones,
streets, IBANs) is read into an in-memory dict original -> pseudonym (the Python twins of
the SQL strategies, so the text gets the same fake name as the customer's row), and the
texts are searched for all of them at once with an Aho–Corasick automaton (`ahocorasick-rs`,
as the forensic gate). Matches respect word boundaries ("Ann" is not replaced inside
"Anna"); among overlapping candidates the leftmost, then the longest wins.

The originals live only in this process's memory: no repr, no pickling, never logged.
With inline anonymization (inline.py) the tables' originals are gone after the restore, so
the restore captures the needed columns (and the row's primary key) into `_phx_text_<table>`
(`CAPTURE_PREFIX`), read by `_dictionary.build` and dropped right after.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator

import ahocorasick_rs

from anonymization._cover import Cover
from anonymization.keyed import hmac_hex
from anonymization.rules import Rules, TableRule
from anonymization.strategies import Dictionaries, email_input, py_dict, py_email, py_phone

# Strategies whose originals are searched inside text (with first_name + last_name pairs).
IN_TEXT = ("name", "email", "phone", "street", "iban")
CAPTURE_PREFIX = "_phx_text_"
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
PHONE_RE = re.compile(r"\+[0-9]{1,3} [0-9]{2,4} [0-9]{4,10}")
IBAN_RE = re.compile(r"\b[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}\b")
MIN_CHARS = 4  # shorter values are words ("Li", "Bo"), not worth a false replacement


def capture_table(table: str) -> str:
    return CAPTURE_PREFIX + table


def has_scrub(rules: Rules) -> bool:
    return any(r.strategy == "scrub" for t in rules.tables.values() for r in t.columns.values())


def name_pair(trule: TableRule) -> tuple[str, str] | None:
    """The table's first-name and last-name columns, if it has both."""
    first = next((c for c, r in trule.columns.items() if r.strategy == "first_name"), None)
    last = next((c for c, r in trule.columns.items() if r.strategy == "last_name"), None)
    return (first, last) if first and last else None


def capture_columns(trule: TableRule) -> list[str]:
    """The original columns the text dictionary needs from a table (empty: none)."""
    if trule.truncate:
        return []
    cols = [c for c, r in trule.columns.items() if r.strategy in IN_TEXT]
    return cols + [c for c in (name_pair(trule) or ()) if c not in cols]


def _word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _bounded(text: str, start: int, end: int, pattern: str) -> bool:
    """Whether text[start:end] stands alone: not part of a longer word, address or number."""
    before = text[start - 1] if start else ""
    after = text[end] if end < len(text) else ""
    glue = ".%+-@" if "@" in pattern else ""  # an address's local part or domain goes on
    if before and (_word(before) or before in glue):
        return False
    if after and (_word(after) or (glue and after in "-@")):
        return False
    if after == "." and glue and end + 1 < len(text) and _word(text[end + 1]):
        return False  # "ada@x.co" inside "ada@x.com.au"
    return True


class _Automaton:
    """Patterns searched at once; matches: leftmost first, then longest, word-bounded."""

    __slots__ = ("_ac", "_patterns")

    def __init__(self, patterns: list[str]) -> None:
        self._patterns = patterns
        self._ac = ahocorasick_rs.AhoCorasick(patterns) if patterns else None

    def matches(self, text: str) -> Iterator[tuple[int, int, int]]:
        """(pattern index, start, end) of non-overlapping matches, in text order."""
        if self._ac is None:
            return
        found = [
            (s, -(e - s), i)
            for i, s, e in self._ac.find_matches_as_indexes(text, overlapping=True)
            if _bounded(text, s, e, self._patterns[i])
        ]
        found.sort()
        pos = 0
        for s, neg, i in found:
            if s >= pos:
                yield i, s, s - neg
                pos = s - neg


class TextDictionary:
    """original -> pseudonym for one run, and the pseudonyms written into texts so far."""

    __slots__ = ("_map", "_auto", "_values", "written")

    def __init__(self) -> None:
        self._map: dict[str, str] = {}
        self._auto: _Automaton | None = None
        self._values: list[str] = []
        self.written: set[str] = set()  # pseudonyms, not personal data: the gates exclude them

    def add(self, original: str, pseudonym: str) -> None:
        """The first pseudonym of an original wins (pairs are added before `name` columns)."""
        if len(original) >= MIN_CHARS and original != pseudonym:
            self._map.setdefault(original, pseudonym)
            self._auto = None

    def update(self, pairs: dict[str, str]) -> None:
        """`add` of each pair (of one item: an original has one pseudonym there)."""
        known = self._map
        for original, pseudonym in pairs.items():
            if original not in known and len(original) >= MIN_CHARS and original != pseudonym:
                known[original] = pseudonym
        self._auto = None

    def __eq__(self, other: object) -> bool:  # the same originals and pseudonyms (never shown)
        return isinstance(other, TextDictionary) and self._map == other._map

    __hash__ = None  # type: ignore[assignment]  # equal by content: not hashable

    def __len__(self) -> int:
        return len(self._map)

    def __repr__(self) -> str:  # never the values
        return f"<TextDictionary: {len(self._map)} originals in memory>"

    def __reduce__(self):
        raise TypeError("a TextDictionary holds original values and is never serialized")

    def replace(self, text: str, rest: Callable[[str], str] = lambda s: s) -> str:
        """`text` with every known original replaced by its pseudonym; the pieces between
        go through `rest` (the regex scrub), so nothing is replaced twice."""
        if self._auto is None:
            patterns = list(self._map)
            self._values = [self._map[p] for p in patterns]
            self._auto = _Automaton(patterns)
        out, pos = [], 0
        for i, s, e in self._auto.matches(text):
            out.append(rest(text[pos:s]))
            out.append(self._values[i])
            self.written.add(self._values[i])
            pos = e
        if not out:
            return rest(text)
        out.append(rest(text[pos:]))
        return "".join(out)


class Phrases:
    """Sampled originals in clear, for the SQL gate's search inside free text. Memory only."""

    __slots__ = ("_values", "_auto", "_for", "_cover")

    def __init__(self) -> None:
        self._values: dict[str, str] = {}
        self._auto: _Automaton | None = None
        self._for: tuple[int, int] = (0, -1)
        self._cover = Cover([])  # the written pseudonyms

    def add(self, value: str, column: str) -> None:
        if len(value) >= MIN_CHARS:
            self._values.setdefault(value, column)
            self._auto = None

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<Phrases: {len(self._values)} originals in memory>"

    def __reduce__(self):
        raise TypeError("Phrases hold original values and are never serialized")

    def count(self, text: str, exclude: set[str]) -> int:
        """How many sampled originals occur in `text`, not counting values in `exclude` (the
        pseudonyms written into texts) nor an original inside one of them where it stands —
        "Angel Smith", another row's original, inside the written "Jose Angel Smith" is no
        survivor (the 1 GB shop's one false finding). The pseudonyms are searched only around
        a hit: in the phrases' automaton they made every text's search slower."""
        if self._auto is None:
            self._auto = _Automaton(list(self._values))
        if self._for != (id(exclude), len(exclude)):
            self._cover = Cover([w for w in exclude if len(w) >= MIN_CHARS])
            self._for = (id(exclude), len(exclude))
        patterns = self._auto._patterns
        return sum(
            1
            for i, s, e in self._auto.matches(text)
            if patterns[i] not in exclude and not self._cover.covers(text, s, e)
        )


def regex_scrub(keys: dict[str, bytes], dicts: Dictionaries, domain: str) -> Callable[[str], str]:
    """E-mails, phones and IBANs found by regexes -> the same pseudonyms as in their own
    columns (each distinct match hashed once)."""
    k_email, k_phone, k_iban = keys["email"], keys["phone"], keys["iban"]

    def cached(pseudonym: Callable[[str], str]) -> Callable[[re.Match], str]:
        known = functools.cache(pseudonym)
        return lambda m: known(m.group(0))

    email = cached(lambda v: py_email(hmac_hex(k_email, email_input(v)), dicts, domain))
    phone = cached(lambda v: py_phone(v, hmac_hex(k_phone, v)))
    iban = cached(lambda v: py_dict("iban", hmac_hex(k_iban, v), dicts))
    return lambda text: IBAN_RE.sub(iban, PHONE_RE.sub(phone, EMAIL_RE.sub(email, text)))
