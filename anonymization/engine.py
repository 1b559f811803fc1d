"""The in-database engine: every table rewritten with set-based SQL, no row through Python
(except free-text scrubbing, done in pandas-sized chunks).

Per table: the transformed rows are written with one `INSERT … SELECT` per primary-key
chunk into a scratch copy, then the table is emptied and refilled from it. That keeps
the table itself — its foreign keys (both directions), grants and triggers — and
measured 3× faster than an in-place `UPDATE … JOIN` here (issue 5). Triggers are saved
and dropped for the refill (so they do not fire) and re-created after; foreign-key and
unique checks are off for the session only.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pymysql

from anonymization.keyed import derive, hmac_hex, set_pads_sql, sql_hmac
from anonymization.rules import ColumnRule, Rules, TableRule, check_against_schema
from anonymization.strategies import (
    DICT_SIZE,
    Dictionaries,
    dict_table,
    email_input,
    email_input_sql,
    family,
    py_dict,
    py_email,
    py_phone,
    sql_expr,
)
from tasks.runtime.base import AdminAccess

_CHUNK = 250_000
_TEXT_TYPES = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext"}
EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
PHONE_RE = re.compile(r"\+[0-9]{1,3} [0-9]{2,4} [0-9]{4,10}")
IBAN_RE = re.compile(r"\b[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}\b")

Progress = Callable[[str, int, int], None]


@dataclass
class AnonymizeReport:
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    applied: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_markdown(self) -> str:
        lines = ["## Anonymization", "", "| table | rows | seconds | rules |", "|---|---:|---:|---|"]
        for t in self.rows:
            rules = ", ".join(f"{c}: {s}" for c, s in self.applied.get(t, {}).items())
            lines.append(f"| {t} | {self.rows[t]:,} | {self.seconds.get(t, 0):.2f} | {rules} |")
        return "\n".join(lines)


def connect(admin: AdminAccess, database: str) -> pymysql.Connection:
    return pymysql.connect(**admin.pymysql_kwargs(), database=database, autocommit=True, charset="utf8mb4",
                           read_timeout=3600, write_timeout=3600)


def schema(conn: pymysql.Connection) -> dict[str, dict[str, tuple[str, int | None]]]:
    with conn.cursor() as cur:
        cur.execute("SELECT c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, c.CHARACTER_MAXIMUM_LENGTH "
                    "FROM information_schema.COLUMNS c JOIN information_schema.TABLES t "
                    "ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME "
                    "WHERE c.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE = 'BASE TABLE' AND c.TABLE_NAME NOT LIKE '\\_phx\\_%%' "
                    "ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION")
        out: dict[str, dict[str, tuple[str, int | None]]] = {}
        for t, c, typ, ln in cur.fetchall():
            out.setdefault(t, {})[c] = (typ, ln)
    return out


def _pk(conn: pymysql.Connection, table: str) -> str | None:
    with conn.cursor() as cur:
        cur.execute("SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = DATABASE() "
                    "AND TABLE_NAME = %s AND CONSTRAINT_NAME = 'PRIMARY'", (table,))
        cols = [r[0] for r in cur.fetchall()]
    return cols[0] if len(cols) == 1 else None


def _families(rules: Rules) -> set[str]:
    fams = set()
    for t in rules.tables.values():
        for c in t.columns.values():
            for r in (c, *c.paths.values()):
                f = family(r.strategy)
                if f:
                    fams.add(f)
            if c.strategy == "scrub":
                fams |= {"email", "phone", "iban"}
    return fams


def _var(fam: str) -> str:
    return "phx_" + re.sub(r"[^a-z0-9_]", "_", fam)


class Engine:
    """One anonymization run on one database."""

    def __init__(self, conn: pymysql.Connection, rules: Rules, key: bytes) -> None:
        self.conn, self.rules, self.key = conn, rules, key
        self.schema = schema(conn)
        check_against_schema(rules, self.schema)
        self.families = _families(rules)
        self.keys = {f: derive(key, f) for f in self.families}
        self.dicts: Dictionaries | None = None

    def _exec(self, sql: str, args=None) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql, args)

    def prepare(self) -> None:
        self._exec("SET SESSION foreign_key_checks = 0, unique_checks = 0")
        for f, k in self.keys.items():
            stmt, args = set_pads_sql(_var(f), k)
            self._exec(stmt, args)
        kinds = {f for f in self.families if f not in ("email", "phone", "ip", "date", "hash")} | {"iban"}
        self.dicts = Dictionaries.build(self.rules.locales, kinds)
        for kind, values in self.dicts.values.items():
            t = dict_table(kind)
            self._exec(f"DROP TABLE IF EXISTS `{t}`")
            self._exec(f"CREATE TABLE `{t}` (bucket INT PRIMARY KEY, value VARCHAR(255) NOT NULL) "
                       "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4")
            with self.conn.cursor() as cur:
                cur.executemany(f"INSERT INTO `{t}` VALUES (%s, %s)", list(enumerate(values)))

    def cleanup(self) -> None:
        for kind in (self.dicts.values if self.dicts else {}):
            self._exec(f"DROP TABLE IF EXISTS `{dict_table(kind)}`")
        self._exec("DROP TABLE IF EXISTS `_phx_scratch`")

    # -- one column ------------------------------------------------------------------------
    def _hash_sql(self, rule: ColumnRule, v: str) -> str:
        fam = family(rule.strategy)
        inp = email_input_sql(v) if rule.strategy == "email" else f"CAST({v} AS CHAR)"
        return sql_hmac(_var(fam), inp) if fam else "NULL"

    def _column_sql(self, table: str, col: str, rule: ColumnRule) -> str:
        typ, maxlen = self.schema[table][col]
        v = f"s.`{col}`"
        if rule.strategy == "json":
            expr = v
            for path, sub in rule.paths.items():
                p = f"'{path}'"
                inner = f"JSON_UNQUOTE(JSON_EXTRACT({v}, {p}))"
                new = sql_expr(sub, inner, self._hash_sql(sub, inner), self.rules.email_domain)
                expr = (f"IF(JSON_TYPE(JSON_EXTRACT({v}, {p})) IS NULL OR JSON_TYPE(JSON_EXTRACT({v}, {p})) = 'NULL', "
                        f"{expr}, JSON_SET({expr}, {p}, {new}))")
            return expr
        expr = sql_expr(rule, v, f"s.`_h_{col}`", self.rules.email_domain)
        if typ in _TEXT_TYPES and maxlen:
            expr = f"LEFT({expr}, {maxlen})"
        return expr

    # -- one table ---------------------------------------------------------------------------
    def table(self, trule: TableRule, progress: Progress) -> int:
        t = trule.name
        if trule.truncate:
            self._exec(f"TRUNCATE TABLE `{t}`")
            return 0
        if trule.delete_where:
            self._exec(f"DELETE FROM `{t}` WHERE {trule.delete_where}")
        sql_cols = {c: r for c, r in trule.columns.items() if r.changes and r.strategy != "scrub"}
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM `{t}`")
            total = cur.fetchone()[0]
        if sql_cols and total:
            self._rewrite(t, sql_cols, total, progress)
        for col, r in trule.columns.items():
            if r.strategy == "scrub":
                self._scrub(t, col, progress)
        return total

    def _rewrite(self, t: str, sql_cols: dict[str, ColumnRule], total: int, progress: Progress) -> None:
        cols = list(self.schema[t])
        hashes = ", ".join(f"{self._hash_sql(r, f't.`{c}`')} AS `_h_{c}`" for c, r in sql_cols.items()
                           if r.strategy != "json")
        select = ", ".join(self._column_sql(t, c, sql_cols[c]) if c in sql_cols else f"s.`{c}`" for c in cols)
        self._exec("DROP TABLE IF EXISTS `_phx_scratch`")
        self._exec(f"CREATE TABLE `_phx_scratch` LIKE `{t}`")
        pk = _pk(self.conn, t)
        ranges: list[str] = [""]
        if pk:
            with self.conn.cursor() as cur:
                cur.execute(f"SELECT MIN(`{pk}`), MAX(`{pk}`) FROM `{t}`")
                lo, hi = cur.fetchone()
            if isinstance(lo, int):
                ranges = [f"WHERE t.`{pk}` BETWEEN {a} AND {min(a + _CHUNK - 1, hi)}" for a in range(lo, hi + 1, _CHUNK)]
        done = 0
        for where in ranges:
            self._exec(f"INSERT INTO `_phx_scratch` SELECT {select} FROM "
                       f"(SELECT t.*{', ' + hashes if hashes else ''} FROM `{t}` t {where}) s")
            done = min(total, done + _CHUNK) if pk else total
            progress(t, done, total)
        triggers = self._save_triggers(t)
        try:
            self._exec(f"TRUNCATE TABLE `{t}`")
            self._exec(f"INSERT INTO `{t}` SELECT * FROM `_phx_scratch`")
        finally:
            for name, ddl in triggers:
                self._exec(f"DROP TRIGGER IF EXISTS `{name}`")
                self._exec(ddl)
        self._exec("DROP TABLE `_phx_scratch`")

    def _save_triggers(self, t: str) -> list[tuple[str, str]]:
        with self.conn.cursor() as cur:
            cur.execute("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = DATABASE() "
                        "AND EVENT_OBJECT_TABLE = %s", (t,))
            names = [r[0] for r in cur.fetchall()]
            saved = []
            for n in names:
                cur.execute(f"SHOW CREATE TRIGGER `{n}`")
                saved.append((n, cur.fetchone()[2]))
                cur.execute(f"DROP TRIGGER `{n}`")
        return saved

    # -- free text ---------------------------------------------------------------------------
    def _scrub(self, t: str, col: str, progress: Progress) -> None:
        """E-mails, phones and IBANs inside text become the same pseudonyms as in their
        own columns (the Python twins of the SQL strategies)."""
        import pandas as pd

        pk = _pk(self.conn, t)
        assert self.dicts is not None
        domain = self.rules.email_domain
        k_email, k_phone, k_iban = self.keys["email"], self.keys["phone"], self.keys["iban"]

        def fix(text: str) -> str:
            text = EMAIL_RE.sub(lambda m: py_email(hmac_hex(k_email, email_input(m.group(0))), self.dicts, domain), text)
            text = PHONE_RE.sub(lambda m: py_phone(m.group(0), hmac_hex(k_phone, m.group(0))), text)
            return IBAN_RE.sub(lambda m: py_dict("iban", hmac_hex(k_iban, m.group(0)), self.dicts), text)

        last = None
        done = 0
        while True:
            where = f"WHERE `{pk}` > %s" if last is not None else ""
            with self.conn.cursor() as cur:
                cur.execute(f"SELECT `{pk}`, `{col}` FROM `{t}` {where} ORDER BY `{pk}` LIMIT 20000",
                            (last,) if last is not None else None)
                chunk = pd.DataFrame(cur.fetchall(), columns=["pk", "text"])
            if chunk.empty:
                break
            last = chunk["pk"].iloc[-1].item()
            chunk = chunk[chunk["text"].notna()]
            new = chunk["text"].map(fix)
            changed = chunk[new != chunk["text"]].assign(text=new)
            with self.conn.cursor() as cur:
                cur.executemany(f"UPDATE `{t}` SET `{col}` = %s WHERE `{pk}` = %s",
                                list(zip(changed["text"], changed["pk"].tolist())))
            done += len(chunk)
            progress(t, done, done)


def anonymize(admin: AdminAccess, database: str, rules: Rules, key: bytes,
              progress: Progress | None = None) -> AnonymizeReport:
    progress = progress or (lambda *_: None)
    conn = connect(admin, database)
    report = AnonymizeReport()
    try:
        eng = Engine(conn, rules, key)
        eng.prepare()
        try:
            for trule in rules.tables.values():
                t0 = time.monotonic()
                report.rows[trule.name] = eng.table(trule, progress)
                report.seconds[trule.name] = time.monotonic() - t0
                report.applied[trule.name] = {c: r.strategy for c, r in trule.columns.items() if r.changes}
        finally:
            eng.cleanup()
    finally:
        conn.close()
    return report
