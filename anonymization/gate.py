"""The GDPR gate (cycle step 4): fails closed.

(a) a column whose name or sampled content looks like personal data has no rule
    (`keep` is an explicit, allowed answer);
(b) any of a sample of original values — kept only as keyed hashes, never in clear —
    still appears anywhere in the anonymized database (whole values in every text
    column, and e-mails/phones/IBANs inside free text);
(c) row counts or foreign-key integrity changed where no rule deleted rows.
"""

from __future__ import annotations

import random
import re
import zlib
from dataclasses import dataclass, field

import pymysql

from anonymization.engine import EMAIL_RE, IBAN_RE, PHONE_RE, _TEXT_TYPES, connect, schema
from anonymization.keyed import derive, hmac_hex, pads, set_pads_sql, sql_hmac
from anonymization.rules import DICT_STRATEGIES, Rules, check_against_schema
from anonymization.strategies import Dictionaries

_DICT_KINDS = set(DICT_STRATEGIES)
from phoenix.errors import PhoenixError
from tasks.runtime.base import AdminAccess

_SAMPLE = 200
_NAME_PATTERNS = {
    "email": r"e_?mail", "phone": r"phone|mobile|^tel|fax", "iban": r"iban|bank_?account|account_?number",
    "name": r"(^|_)(first|last|full|sur|given|family|middle|maiden)_?name$|^name$|holder|^customer_name$",
    "address": r"street|address|^addr|city|zip|post_?code|postal", "ip": r"(^|_)ip(_|$)|ip_?addr",
    "birth date": r"birth|dob", "national id": r"ssn|passport|national_?id|tax_?id",
}
_CONTENT = {"email": EMAIL_RE, "phone": PHONE_RE, "iban": IBAN_RE,
            "ip": re.compile(r"^(\d{1,3}\.){3}\d{1,3}$|^[0-9a-f]{1,4}(:[0-9a-f]{0,4}){2,7}$", re.I)}


class GateFailed(PhoenixError):
    exit_code = 4


@dataclass
class Baseline:
    """What the gate compares against. Holds no personal data in clear."""

    counts: dict[str, int] = field(default_factory=dict)
    orphans: dict[str, int] = field(default_factory=dict)
    hashes: set[str] = field(default_factory=set)
    # hash -> keyed CRC32 of the same value: a cheap prefilter, so the leak search
    # computes the HMAC only for the rare rows whose CRC matches (see run_gate).
    crcs: dict[str, int] = field(default_factory=dict)

    def add(self, gate_key: bytes, value: str) -> None:
        """Remember an original value, as its HMAC and keyed CRC only."""
        h = hmac_hex(gate_key, value)
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
            raise GateFailed(f"GDPR gate failed ({len(self.findings)} findings): " + "; ".join(self.findings[:10])
                             + (" …" if len(self.findings) > 10 else ""))


def _q(conn: pymysql.Connection, sql: str, args=None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def _fks(conn) -> list[tuple[str, str, str, str]]:
    return _q(conn, "SELECT TABLE_NAME, COLUMN_NAME, REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME "
                    "FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = DATABASE() "
                    "AND REFERENCED_TABLE_NAME IS NOT NULL ORDER BY 1, 2")


def _integrity(conn) -> tuple[dict[str, int], dict[str, int]]:
    sch = schema(conn)
    counts = {t: _q(conn, f"SELECT COUNT(*) FROM `{t}`")[0][0] for t in sch}
    orphans = {}
    for t, c, rt, rc in _fks(conn):
        orphans[f"{t}.{c}->{rt}.{rc}"] = _q(
            conn, f"SELECT COUNT(*) FROM `{t}` x LEFT JOIN `{rt}` p ON p.`{rc}` = x.`{c}` "
                  f"WHERE x.`{c}` IS NOT NULL AND p.`{rc}` IS NULL")[0][0]
    return counts, orphans


def _pii_columns(conn, sch) -> dict[tuple[str, str], str]:
    """Columns that look like personal data, by name or by sampled content."""
    found = {}
    for t, cols in sch.items():
        for c, (typ, _len) in cols.items():
            kind = next((k for k, pat in _NAME_PATTERNS.items() if re.search(pat, c, re.I)), None)
            if kind is None and typ in _TEXT_TYPES | {"json"}:
                sample = [r[0] for r in _q(conn, f"SELECT `{c}` FROM `{t}` WHERE `{c}` IS NOT NULL LIMIT 100")]
                for k, rx in _CONTENT.items():
                    hits = sum(1 for v in sample if isinstance(v, str) and rx.search(v))
                    if sample and hits >= max(1, len(sample) // 10):
                        kind = k
                        break
            if kind:
                found[(t, c)] = kind
    return found


_INT_TYPES = {"tinyint", "smallint", "mediumint", "int", "bigint"}


def _sample(conn: pymysql.Connection, t: str, c: str, cols: dict) -> list[tuple]:
    """About `_SAMPLE` random non-NULL values of t.c. With an integer primary key, by
    point lookups of random keys (no scan: ORDER BY RAND() read and sorted whole tables,
    9 s of a 1 GB cycle); else, or when the keys are too sparse, the full random sort."""
    keys = [r[4] for r in _q(conn, f"SHOW KEYS FROM `{t}` WHERE Key_name = 'PRIMARY'")]
    if len(keys) == 1 and cols[keys[0]][0] in _INT_TYPES:
        pk = keys[0]
        lo, hi = _q(conn, f"SELECT MIN(`{pk}`), MAX(`{pk}`) FROM `{t}`")[0]
        if lo is not None:
            rng = random.Random(f"{t}.{c}")  # deterministic: the same sample for the same data
            ids = sorted({rng.randint(lo, hi) for _ in range(2 * _SAMPLE)})
            rows = _q(conn, f"SELECT `{c}` FROM `{t}` WHERE `{pk}` IN ({','.join(map(str, ids))}) "
                            f"AND `{c}` IS NOT NULL LIMIT {_SAMPLE}")
            if len(rows) >= _SAMPLE // 2:
                return list(rows)
    return list(_q(conn, f"SELECT `{c}` FROM `{t}` WHERE `{c}` IS NOT NULL ORDER BY RAND(42) LIMIT {_SAMPLE}"))


def take_baseline(admin: AdminAccess, database: str, rules: Rules, key: bytes) -> Baseline:
    """Before anonymizing: counts, FK orphans, and keyed hashes of sampled PII values."""
    conn = connect(admin, database)
    try:
        sch = schema(conn)
        check_against_schema(rules, sch)
        gate_key = derive(key, "gate")
        counts, orphans = _integrity(conn)
        base = Baseline(counts=counts, orphans=orphans)
        # Values the dictionaries themselves hold ("Anna", "Berlin") are not identifying,
        # and a pseudonym may legitimately equal one: they are not searched for.
        fakes = {v for vals in Dictionaries.build(rules.locales, _DICT_KINDS | {
            "faker_" + p for p in rules.faker_providers()}).values.values() for v in vals}
        for (t, c), _kind in _pii_columns(conn, sch).items():
            if sch[t][c][0] in ("date", "datetime"):
                continue  # dates repeat across rows; date_shift never keeps a row's own date
            rule = rules.tables.get(t)
            crule = rule.columns.get(c) if rule else None
            if crule is not None and not crule.changes:
                continue  # explicitly kept: not personal data
            for (v,) in _sample(conn, t, c, sch[t]):
                text = v.isoformat() if hasattr(v, "isoformat") else str(v)
                if crule is not None and crule.strategy == "scrub":
                    for rx in (EMAIL_RE, PHONE_RE, IBAN_RE):
                        for m in rx.findall(text):
                            base.add(gate_key, m)
                elif len(text) >= 4 and text not in fakes:
                    base.add(gate_key, text)
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
            result.findings.append(f"unruled column {t}.{c} looks like {kind}: add a rule (or `keep`)")
        if baseline is None:
            return result
        # (b) surviving originals, searched set-based: hash every text value in SQL
        result.checked_values = len(baseline.hashes)
        if baseline.hashes:
            gate_key = derive(key, "gate")
            stmt, args = set_pads_sql("phx_gate", gate_key)
            _q(conn, stmt, args)
            # Keyed only by the inner pad, the CRC is a prefilter with no index on h: x drives
            # (STRAIGHT_JOIN), b is looked up by CRC, and the HMAC runs only on a CRC match.
            _q(conn, "CREATE TEMPORARY TABLE _phx_baseline (crc INT UNSIGNED NOT NULL, h CHAR(64) NOT NULL, "
                     "KEY (crc))")
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO _phx_baseline VALUES (%s, %s)",
                                [(baseline.crcs[h], h) for h in baseline.hashes])
            for t, cols in sch.items():
                for c, (typ, _len) in cols.items():
                    if typ not in _TEXT_TYPES | {"json"}:
                        continue
                    value = f"CONVERT(CAST(x.`{c}` AS CHAR) USING utf8mb4)"
                    hit = _q(conn, f"SELECT COUNT(*) FROM `{t}` x STRAIGHT_JOIN _phx_baseline b "
                                   f"ON b.crc = CRC32(CONCAT(@phx_gate_i, {value})) "
                                   f"AND b.h = {sql_hmac('phx_gate', f'CAST(x.`{c}` AS CHAR)')}")[0][0]
                    if hit:
                        result.findings.append(f"{hit} original value(s) survive in {t}.{c}")
                    if typ in ("text", "mediumtext", "longtext"):
                        n = _surviving_in_text(conn, t, c, gate_key, baseline.hashes)
                        if n:
                            result.findings.append(f"{n} original e-mail/phone/IBAN(s) survive inside {t}.{c}")
        # (c) rows and foreign keys
        counts, orphans = _integrity(conn)
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


def _surviving_in_text(conn, t: str, c: str, gate_key: bytes, hashes: set[str]) -> int:
    n = 0
    for (text,) in _q(conn, f"SELECT `{c}` FROM `{t}` WHERE `{c}` IS NOT NULL"):
        for rx in (EMAIL_RE, PHONE_RE, IBAN_RE):
            n += sum(1 for m in rx.findall(text) if hmac_hex(gate_key, m) in hashes)
    return n
