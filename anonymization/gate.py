"""The GDPR gate (cycle step 4): fails closed.

(a) a column whose name or sampled content looks like personal data has no rule
    (`keep` is an explicit, allowed answer);
(b) any of a sample of original values — kept only as keyed hashes, never in clear —
    still appears in the anonymized database: identifying ones (e-mails, phones, IBANs,
    full names, streets) as whole values in every text column, `public` ones included, and
    e-mails/phones/IBANs inside free text; single words (first names, cities, …) only in
    their own column (and the `keep` columns of its table); sampled full names, e-mails and
    phones are also searched inside free text at once (freetext.Phrases: in clear, in
    this process's memory only), except pseudonyms the engine wrote there;
(c) row counts or foreign-key integrity changed where no rule deleted rows.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pymysql
from pymysql.converters import escape_string

from anonymization._sessions import _Sessions
from anonymization.engine import _TEXT_TYPES, EMAIL_RE, IBAN_RE, PHONE_RE, connect, dictionaries, may_hold_pii, schema
from anonymization.forensic import Needles
from anonymization.freetext import Phrases
from anonymization.keyed import derive, hmac_hex, pads, set_pads_sql, sql_hmac
from anonymization.originals import column_rule, hashed_sample, needles_of, phrases_of
from anonymization.rules import Rules, check_against_schema
from phoenix.db import AdminAccess, quote
from phoenix.errors import GateFailed

_NAME_PATTERNS = {
    "email": r"e_?mail",
    "phone": r"phone|mobile|^tel|fax",
    "iban": r"iban|bank_?account|account_?number",
    "name": r"(^|_)(first|last|full|sur|given|family|middle|maiden)_?name$|^name$|holder|^customer_name$",
    "address": r"street|address|^addr|city|zip|post_?code|postal",
    "ip": r"(^|_)ip(_|$)|ip_?addr",
    "birth date": r"birth|dob",
    "national id": r"ssn|passport|national_?id|tax_?id",
}
_CONTENT = {
    "email": EMAIL_RE,
    "phone": PHONE_RE,
    "iban": IBAN_RE,
    "ip": re.compile(r"^(\d{1,3}\.){3}\d{1,3}$|^[0-9a-f]{1,4}(:[0-9a-f]{0,4}){2,7}$", re.I),
}


@dataclass
class Baseline:
    """What the gate compares against. Holds no personal data in clear."""

    counts: dict[str, int] = field(default_factory=dict)
    orphans: dict[str, int] = field(default_factory=dict)
    hashes: set[str] = field(default_factory=set)
    # hash -> the columns ("t.c") a single word is searched in; a hash not here: every column.
    own: dict[str, set[str]] = field(default_factory=dict)
    # hash -> keyed CRC32 of the same value: a cheap prefilter, so the leak search
    # computes the HMAC only for the rare rows whose CRC matches (see run_gate).
    crcs: dict[str, int] = field(default_factory=dict)
    # Originals in clear for the forensic byte scan: in this process's memory only.
    needles: Needles = field(default_factory=Needles, repr=False, compare=False)
    # Sampled full names, e-mails and phones in clear, for the search inside free text: memory only.
    phrases: Phrases = field(default_factory=Phrases, repr=False, compare=False)
    # Pseudonyms the engine's scrub wrote into texts (not personal data): not leaks when found.
    written: set[str] = field(default_factory=set, repr=False, compare=False)
    # The rows the leak search reads: table -> SQL condition ("" = all its rows); None = every
    # table whole. An incremental cycle's: the rows it changed (the rest is the verified golden's).
    scope: dict[str, str] | None = None
    # Whether counts and orphans were taken (check c): not where the rows were changed on the
    # way in, with foreign keys checked (an incremental cycle: it would compare the copy with itself).
    integrity: bool = True

    def exclude(self, written: set[str]) -> None:
        """After anonymizing: what the scrub wrote is not an original that survived, even
        where it equals one (a pseudonym may be some other person's real name)."""
        self.written |= written
        self.needles.discard(written)

    def own_columns(self, t: str) -> set[str]:
        """The columns of table t whose single words were sampled."""
        return {col for cols in self.own.values() for col in cols if col.startswith(f"{t}.")}

    def add(self, gate_key: bytes, value: str, column: str = "") -> None:
        """Remember an original value, as its HMAC and keyed CRC only: searched in every
        column, or (a single word, `column` "t.c") only in the column it came from. Its
        lower-case form too: a case-insensitive column is searched by LOWER() of its values."""
        for v in dict.fromkeys((value, value.lower())):
            self._add(gate_key, v, column)

    def _add(self, gate_key: bytes, value: str, column: str) -> None:
        h = hmac_hex(gate_key, value)
        if not column:
            self.own.pop(h, None)
        elif h not in self.hashes or h in self.own:
            self.own.setdefault(h, set()).add(column)
        self.hashes.add(h)
        self.crcs[h] = zlib.crc32(pads(gate_key)[0] + value.encode("utf-8"))


@dataclass
class GateResult:
    findings: list[str] = field(default_factory=list)
    checked_values: int = 0

    @property
    def passed(self) -> bool:
        return not self.findings

    def to_markdown(self) -> str:
        head = f"## GDPR gate: {'PASSED' if self.passed else 'FAILED'}\n\n{self.checked_values:,} sampled originals searched."
        return head + ("\n\n" + "\n".join(f"- {f}" for f in self.findings) if self.findings else "")

    def raise_if_failed(self) -> None:
        if self.findings:
            raise GateFailed(
                f"GDPR gate failed ({len(self.findings)} findings): "
                + "; ".join(self.findings[:10])
                + (" …" if len(self.findings) > 10 else "")
            )


def _q(conn: pymysql.Connection, sql: str, args=None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def _fks(conn) -> list[tuple[str, str, str, str]]:
    return _q(
        conn,
        "SELECT TABLE_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME "
        "FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = DATABASE() "
        "AND REFERENCED_TABLE_NAME IS NOT NULL ORDER BY 1, 2",
    )


def _integrity(admin: AdminAccess, database: str) -> tuple[dict[str, int], dict[str, int]]:
    """Rows per table and orphan rows per foreign key; the queries run on two sessions."""
    conn = connect(admin, database)
    try:
        tables, fks = list(schema(conn)), _fks(conn)
    finally:
        conn.close()
    queries = [f"SELECT COUNT(*) FROM {quote(t)}" for t in tables] + [
        f"SELECT COUNT(*) FROM {quote(t)} x LEFT JOIN {quote(rt)} p ON p.{quote(rc)} = x.{quote(c)} "
        f"WHERE x.{quote(c)} IS NOT NULL AND p.{quote(rc)} IS NULL"
        for t, c, rt, rc in fks
    ]
    with _Sessions(admin, database) as sessions:
        results = sessions.map(lambda conn, sql: _q(conn, sql)[0][0], queries)
    counts = dict(zip(tables, results[: len(tables)], strict=True))
    orphans = {f"{t}.{c}->{rt}.{rc}": n for (t, c, rt, rc), n in zip(fks, results[len(tables) :], strict=True)}
    return counts, orphans


def table_checksums(admin: AdminAccess, database: str) -> dict[str, int]:
    """CHECKSUM TABLE of every base table (what a clone must serve unchanged), the largest
    first, on two sessions: it reads the whole database (1 GB: 2.9 s on one, 1.9 s on two)."""
    conn = connect(admin, database)
    try:
        tables = [
            t
            for (t,) in _q(
                conn,
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                "AND TABLE_TYPE = 'BASE TABLE' ORDER BY DATA_LENGTH DESC, TABLE_NAME",
            )
        ]
    finally:
        conn.close()
    with _Sessions(admin, database) as sessions:
        sums = sessions.map(lambda c, t: _q(c, f"CHECKSUM TABLE {quote(t)}")[0][1], tables)
    return {t: int(s or 0) for t, s in sorted(zip(tables, sums, strict=True))}


def _pii_columns(conn, sch) -> dict[tuple[str, str], str]:
    """Columns that look like personal data, by name or by sampled content."""
    found = {}
    for t, cols in sch.items():
        for c, (typ, _len) in cols.items():
            kind = next((k for k, pat in _NAME_PATTERNS.items() if re.search(pat, c, re.I)), None)
            if kind is None and typ in _TEXT_TYPES | {"json"}:
                sample = [
                    r[0] for r in _q(conn, f"SELECT {quote(c)} FROM {quote(t)} WHERE {quote(c)} IS NOT NULL LIMIT 100")
                ]
                for k, rx in _CONTENT.items():
                    hits = sum(1 for v in sample if isinstance(v, str) and rx.search(v))
                    if sample and hits >= max(1, len(sample) // 10):
                        kind = k
                        break
            if kind:
                found[(t, c)] = kind
    return found


def _collations(conn) -> dict[tuple[str, str], str]:
    rows = _q(
        conn,
        "SELECT TABLE_NAME, COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = DATABASE() AND COLLATION_NAME IS NOT NULL",
    )
    return {(t, c): coll for t, c, coll in rows}


def _advice(rules: Rules, t: str, c: str) -> str:
    """Which rule to add or change for originals found in t.c."""
    rule = column_rule(rules, t, c)
    if rule is None:
        return f"add a rule for {t}.{c}, or mark it `public` if it is public reference data"
    if rule.strategy == "keep":
        return f"{t}.{c} is `keep`: give it a strategy, or mark it `public` if it is public reference data"
    if rule.public:
        return f"{t}.{c} is `public` but holds identifying originals (e-mails, phones, IBANs, names, streets): give it a strategy"
    return f"its rule ({rule.strategy}) leaves originals: check its `where`, or choose another strategy"


def take_baseline(
    admin: AdminAccess,
    database: str,
    rules: Rules,
    key: bytes,
    originals: dict[str, str] | None = None,
    drawn: Sequence[Rules] = (),
    integrity: bool = True,
) -> Baseline:
    """Before anonymizing: counts, FK orphans, and keyed hashes of sampled PII values.
    `originals` maps a table whose rows were anonymized on the way in to the table that
    holds a sample of its original rows: its values are sampled there. `drawn`: the rules
    of other engines that wrote into the database (an inline restore's, for all databases):
    what their dictionaries hold is not searched for either."""
    originals = originals or {}
    conn = connect(admin, database)
    try:
        sch = schema(conn)
        check_against_schema(rules, sch)
        gate_key = derive(key, "gate")
        counts, orphans = _integrity(admin, database) if integrity else ({}, {})
        base = Baseline(counts=counts, orphans=orphans, integrity=integrity)
        # Values the engine draws ("Anna", "Berlin") are not identifying, and a pseudonym may
        # legitimately equal one: exactly the dictionaries of this run's engines are left out.
        dicts = [dictionaries(r) for r in (rules, *drawn)]
        fakes = {v for d in dicts for vals in d.values.values() for v in vals}
        base.needles = needles_of(conn, sch, rules, originals, fakes)
        base.phrases = phrases_of(conn, sch, rules, originals, fakes)
        pii = _pii_columns(conn, sch)
        for value, column in hashed_sample(conn, sch, rules, originals, pii, dicts, _collations(conn)):
            base.add(gate_key, value, column)
        return base
    finally:
        conn.close()


def run_gate(admin: AdminAccess, database: str, rules: Rules, key: bytes, baseline: Baseline | None) -> GateResult:
    conn = connect(admin, database)
    result = GateResult()
    try:
        sch = schema(conn)
        # (a) unruled PII-looking columns
        for (t, c), kind in sorted(_pii_columns(conn, sch).items()):
            trule = rules.tables.get(t)
            if trule and (trule.truncate or c in trule.columns):
                continue
            result.findings.append(
                f"unruled column {t}.{c} looks like {kind}: add a rule for it (`keep` or `public` if it is not personal)"
            )
        if baseline is None:
            return result
        # (b) surviving originals, searched set-based in SQL, one scan per table, tables in parallel
        result.checked_values = len(baseline.hashes)
        if baseline.hashes:
            result.findings += _search_originals(
                admin, database, sch, _collations(conn), rules, derive(key, "gate"), baseline
            )
        # (c) rows and foreign keys
        if not baseline.integrity:
            return result
        counts, orphans = _integrity(admin, database)
        for t, before in baseline.counts.items():
            trule = rules.tables.get(t)
            if trule and trule.removes_rows:
                continue
            if counts.get(t) != before:
                result.findings.append(f"row count of {t} changed from {before:,} to {counts.get(t, 0):,}")
        for fk, before in baseline.orphans.items():
            if orphans.get(fk, 0) > before:
                result.findings.append(f"foreign key {fk} has {orphans[fk] - before} new orphan rows")
        return result
    finally:
        conn.close()


def _search_originals(
    admin: AdminAccess,
    database: str,
    sch: dict,
    collations: dict[tuple[str, str], str],
    rules: Rules,
    gate_key: bytes,
    baseline: Baseline,
) -> list[str]:
    """Every text value of every table, hashed in SQL and looked up among the baseline's:
    identifying originals in every column, single words in their own column (and in the
    `keep` columns of their table), never in a `public` one.

    The keyed CRC32 of each value is tested against the baseline's CRCs first (a constant
    IN list: a binary search); only on a match is the HMAC computed and looked up. All
    text columns of a table are tested in one scan, and tables are searched on two
    connections at once (1 GB: 21.9 s with a join per column, one connection)."""
    crcs = ", ".join(str(c) for c in sorted(set(baseline.crcs.values())))

    def setup(conn: pymysql.Connection) -> None:
        _q(conn, *set_pads_sql("phx_gate", gate_key))
        _q(
            conn,
            "CREATE TEMPORARY TABLE _phx_baseline (h CHAR(64) NOT NULL, c VARCHAR(400) NOT NULL, PRIMARY KEY (h, c)) "
            "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
        )
        with conn.cursor() as cur:
            rows = [(h, col) for h in sorted(baseline.hashes) for col in sorted(baseline.own.get(h, {""}))]
            cur.executemany("INSERT INTO _phx_baseline VALUES (%s, %s)", rows)

    def scan(conn: pymysql.Connection, item: tuple[str, list[str]]) -> list[str]:
        t, cols = item
        hits = []
        for c in cols:
            value = f"CONVERT(CAST(x.{quote(c)} AS CHAR) USING utf8mb4)"
            if "_ci" in collations.get((t, c), ""):  # compared as the column compares: "ADA@X.DE" = "ada@x.de"
                value = f"LOWER({value})"
            places = ", ".join(f"'{escape_string(p)}'" for p in _searched_for(rules, baseline, t, c))
            hits.append(
                f"IFNULL(SUM(CRC32(CONCAT(@phx_gate_i, {value})) IN ({crcs}) AND "
                f"{sql_hmac('phx_gate', value)} IN "
                f"(SELECT h FROM _phx_baseline WHERE c IN ({places}))), 0)"
            )
        counts = _q(conn, f"SELECT {', '.join(hits)} FROM {quote(t)} x{_where(baseline, t)}")[0]
        return [
            f"{n} original value(s) survive in {t}.{c}: {_advice(rules, t, c)}"
            for c, n in zip(cols, counts, strict=True)
            if n
        ]

    def inside(conn: pymysql.Connection, item: tuple[str, str]) -> list[str]:
        t, c = item
        n, named = _surviving_in_text(conn, t, c, gate_key, baseline)
        advice = _advice(rules, t, c)
        return ([f"{n} original e-mail/phone/IBAN(s) survive inside {t}.{c}: {advice}"] if n else []) + (
            [f"{named} sampled original full name(s)/e-mail(s)/phone(s) survive inside {t}.{c}: {advice}"]
            if named
            else []
        )

    # Free texts (Python reads them) first, beside the scans: the longest items start first.
    if baseline.scope is not None:
        sch = {t: cols for t, cols in sch.items() if t in baseline.scope}
    texts = [
        (t, c)
        for t, cols in sch.items()
        for c, (typ, _len) in cols.items()
        if typ in ("text", "mediumtext", "longtext")
    ]
    scans = [
        (t, cols)
        for t, cols in (
            (t, [c for c, (typ, _len) in cols.items() if typ in _TEXT_TYPES | {"json"}]) for t, cols in sch.items()
        )
        if cols
    ]
    work: list[tuple[Callable, tuple]] = [(inside, i) for i in texts] + [(scan, i) for i in scans]
    with _Sessions(admin, database, setup) as sessions:
        found = sessions.map(lambda conn, w: w[0](conn, w[1]), work)
    return [f for fs in found for f in fs]


def _searched_for(rules: Rules, baseline: Baseline, t: str, c: str) -> list[str]:
    """Whose originals are searched in t.c: "" (identifying, from anywhere), then unless t.c
    is `public`, its own single words — a `keep` column also those of its whole table."""
    rule = column_rule(rules, t, c)
    if rule is not None and rule.public:
        return [""]
    if rule is not None and rule.strategy == "keep":
        return ["", *sorted(baseline.own_columns(t))]
    return ["", f"{t}.{c}"]


def _where(baseline: Baseline, t: str) -> str:
    scoped = (baseline.scope or {}).get(t)
    return f" WHERE {scoped}" if scoped else ""


def _everywhere(h: str, baseline: Baseline) -> bool:
    return h in baseline.hashes and h not in baseline.own


def _surviving_in_text(conn, t: str, c: str, gate_key: bytes, baseline: Baseline) -> tuple[int, int]:
    """Originals inside free text: (regex matches that are sampled originals, sampled
    phrases found). Without phrases only texts that can hold a regex match leave the
    server; each distinct regex match is tested once, by its keyed CRC first (the HMAC
    only on a CRC match); the phrases are searched for all at once (Aho–Corasick)."""
    pad_crc, crcs = zlib.crc32(pads(gate_key)[0]), set(baseline.crcs.values())
    known: dict[str, bool] = {}
    n = named = 0
    phrases = baseline.phrases
    scoped = (baseline.scope or {}).get(t)
    conds = [w for w in ("" if len(phrases) else may_hold_pii(c), scoped or "") if w]
    where = " WHERE " + " AND ".join(f"({w})" for w in conds) if conds else ""
    for (text,) in _q(conn, f"SELECT {quote(c)} FROM {quote(t)}{where}"):
        if text is None:
            continue
        if len(phrases):
            named += phrases.count(text, baseline.written)
        for rx in (EMAIL_RE, PHONE_RE, IBAN_RE):
            for m in rx.findall(text):
                if m not in known:
                    known[m] = zlib.crc32(m.encode("utf-8"), pad_crc) in crcs and _everywhere(
                        hmac_hex(gate_key, m), baseline
                    )
                n += known[m]
    return n, named
