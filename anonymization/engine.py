"""The in-database engine: every table rewritten with set-based SQL, no row through Python
(except free-text scrubbing, done in chunks).

Per table: one `INSERT … SELECT` writes the transformed rows into a scratch copy, which
then takes the table's place (`rewrite.py`). The keyed hash is computed once per value
and column, dictionaries are inline `ELT()` lists (`strategies.py`). Triggers are saved
and dropped so they do not fire, and re-created after; foreign-key and unique checks are
off for the session only (uniqueness is checked when the keys are re-added).
1 M customers × 4 columns: 20.3 s before these changes, see README for the current figure.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pymysql

from anonymization import freetext
from anonymization._scrub import TextScrub, _pk
from anonymization._scrub import may_hold_pii as may_hold_pii  # gate.py imports it from here
from anonymization.freetext import EMAIL_RE, IBAN_RE, PHONE_RE  # noqa: F401 (gate.py, sampling.py import them here)
from anonymization.keyed import derive, set_pads_sql, sql_hmac
from anonymization.rewrite import OLD, SCRATCH, Column, add_keys, recover, rewrite
from anonymization.rules import ColumnRule, Rules, TableRule, check_against_schema
from anonymization.strategies import Dictionaries, dictionary_kinds, email_input_sql, family, sql_expr
from phoenix.db import AdminAccess, quote
from phoenix.db import connect as connect

SCRUBBED = "_phx_scrub"  # (pk, new text) of the rows a scrub changes: pseudonyms only
_TEXT_TYPES = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext"}

Progress = Callable[[str, int, int], None]


@dataclass
class AnonymizeReport:
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    applied: dict[str, dict[str, str]] = field(default_factory=dict)
    inlined: set[str] = field(default_factory=set)  # rewritten while restored (inline.py)
    # Pseudonyms the scrub wrote into texts for known originals (no personal data): the
    # gates do not count them as originals that survive.
    written: set[str] = field(default_factory=set, repr=False)
    known: int = 0  # originals searched for inside free text (how many, never which)
    known_seconds: float = 0.0  # reading them and computing their pseudonyms

    def to_markdown(self) -> str:
        # One rule a row: the Prefect UI does not wrap table cells, and a table's rules in one
        # cell made the table twice the page's width (bench/ui.py).
        lines = ["## Anonymization", "", "| table | rows | seconds | column | rule |", "|---|---:|---:|---|---|"]
        for t in self.rows:
            rules = list(self.applied.get(t, {}).items()) or [("", "")]
            lines.append(f"| {t} | {self.rows[t]:,} | {self.seconds.get(t, 0):.2f} | {rules[0][0]} | {rules[0][1]} |")
            lines += [f"| | | | {c} | {s} |" for c, s in rules[1:]]
        if self.inlined:
            lines += [
                "",
                "Anonymized on the way in (rows rewritten during the restore): "
                + ", ".join(f"`{t}`" for t in sorted(self.inlined))
                + ".",
            ]
        if self.known:
            lines += [
                "",
                f"{self.known:,} known originals searched inside free text (dictionary built in "
                f"{self.known_seconds:.2f} s), {len(self.written):,} distinct pseudonyms written there.",
            ]
        return "\n".join(lines)


def schema(conn: pymysql.Connection) -> dict[str, dict[str, tuple[str, int | None]]]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT c.TABLE_NAME, c.COLUMN_NAME, c.DATA_TYPE, c.CHARACTER_MAXIMUM_LENGTH "
            "FROM information_schema.COLUMNS c JOIN information_schema.TABLES t "
            "ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME "
            "WHERE c.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE = 'BASE TABLE' AND c.TABLE_NAME NOT LIKE '\\_phx\\_%%' "
            "ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION"
        )
        out: dict[str, dict[str, tuple[str, int | None]]] = {}
        for t, c, typ, ln in cur.fetchall():
            out.setdefault(t, {})[c] = (typ, ln)
    return out


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


def dictionaries(rules: Rules) -> Dictionaries:
    """The dictionaries an engine on `rules` draws from (the gate excludes exactly these)."""
    return Dictionaries.build(rules.locales, dictionary_kinds(_families(rules)))


def set_based(trule: TableRule) -> dict[str, ColumnRule]:
    """The columns a table's SQL rewrite changes (free-text scrubbing runs apart)."""
    return {c: r for c, r in trule.columns.items() if r.changes and r.strategy != "scrub"}


@dataclass
class Inlined:
    """What a restore already did (inline.py): tables whose rows arrived pseudonymized, and
    the key definitions it held back for the engine to add (collisions are resolved then)."""

    tables: set[str] = field(default_factory=set)
    keys: dict[str, list[str]] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)  # table -> capture of its originals (freetext.py)
    text_keys: dict[str, list[str]] = field(default_factory=dict)  # table -> its capture's key columns (_dictionary.py)


def _var(fam: str) -> str:
    return "phx_" + re.sub(r"[^a-z0-9_]", "_", fam)


class Engine(TextScrub):
    """One anonymization run on one database."""

    def __init__(
        self,
        conns: list[pymysql.Connection],
        rules: Rules,
        key: bytes,
        *,
        check: bool = True,
        inlined: Inlined | None = None,
    ) -> None:
        # A copy: the caller's list also gets the side session, which must never write slices here.
        self.conns, self.rules, self.key = list(conns), rules, key
        self.conn = conns[0]  # DDL, scrubbing and small queries; all of them write slices
        self.schema = schema(self.conn)
        if check:  # off while a restore is still creating the tables (inline.py)
            check_against_schema(rules, self.schema)
        self.families = _families(rules)
        self.keys = {f: derive(key, f) for f in self.families}
        self.dicts: Dictionaries | None = None
        self.inlined = inlined or Inlined()
        self.texts = freetext.TextDictionary()  # filled by `read_texts`, before any rewrite
        self.texts_seconds = 0.0
        self._nvar = 0

    def keys_only(self, trule: TableRule) -> bool:
        """Whether all that is left of a table is adding the keys the restore held back."""
        return trule.name in self.inlined.tables and all(r.strategy != "scrub" for r in trule.columns.values())

    def sibling(self, conn: pymysql.Connection) -> Engine:
        """The same run on another session (schema, dictionaries and keys shared)."""
        other = copy.copy(self)
        other.conns, other.conn = [conn], conn
        self._set_up(conn)
        return other

    def _set_up(self, conn: pymysql.Connection) -> None:
        """A session of the run: checks off (keys are checked when added), pads loaded."""
        with conn.cursor() as cur:
            cur.execute("SET SESSION foreign_key_checks = 0, unique_checks = 0")
            for stmt in self.pad_statements():
                cur.execute(*stmt)

    def pad_statements(self) -> list[tuple[str, tuple[bytes, bytes]]]:
        """The family keys' pads as session variables (statements with parameters)."""
        return [set_pads_sql(_var(f), k) for f, k in self.keys.items()]

    def _exec(self, sql: str, args=None) -> None:
        with self.conn.cursor() as cur:
            cur.execute(sql, args)

    def prepare(self) -> None:
        for conn in self.conns:
            self._set_up(conn)
        recover(self.conn)  # a previous run that died mid-swap: its foreign keys and triggers come back
        self.dicts = dictionaries(self.rules)

    def cleanup(self) -> None:
        self._exec(f"DROP TABLE IF EXISTS {quote(SCRATCH)}")
        self._exec(f"DROP TABLE IF EXISTS {quote(OLD)}")
        self._drop_captures()

    # -- one column ------------------------------------------------------------------------
    def _hash_sql(self, rule: ColumnRule, v: str) -> str:
        fam = family(rule.strategy)
        inp = email_input_sql(v) if rule.strategy == "email" else f"CAST({v} AS CHAR)"
        return sql_hmac(_var(fam), inp) if fam else "NULL"

    def _expr(self, rule: ColumnRule, v: str) -> str:
        self._nvar += 1  # one user variable per hashed value in the statement
        assert self.dicts is not None, "prepare() first"
        return sql_expr(rule, v, self._hash_sql(rule, v), f"@phx_h{self._nvar}", self.rules.email_domain, self.dicts)

    def _column_sql(self, table: str, col: str, rule: ColumnRule) -> str:
        typ, maxlen = self.schema[table][col]
        v = f"t.{quote(col)}"
        if rule.strategy == "json":
            expr = v
            for path, sub in rule.paths.items():
                p = f"'{path}'"
                inner = f"JSON_UNQUOTE(JSON_EXTRACT({v}, {p}))"
                expr = (
                    f"IF(JSON_TYPE(JSON_EXTRACT({v}, {p})) IS NULL OR JSON_TYPE(JSON_EXTRACT({v}, {p})) = 'NULL', "
                    f"{expr}, JSON_SET({expr}, {p}, {self._expr(sub, inner)}))"
                )
            return expr
        expr = self._expr(rule, v)
        if typ in _TEXT_TYPES and maxlen:
            expr = f"LEFT({expr}, {maxlen})"
        return expr

    # -- one table ---------------------------------------------------------------------------
    def table(self, trule: TableRule, progress: Progress) -> int:
        """Rewrite one table: its set-based columns, its scrubbed texts and its `delete_where`
        all in one copy (rewrite.py). Nothing is changed in place: an UPDATE or DELETE would
        leave the original rows in the undo log and in the pages' free space."""
        t = trule.name
        if trule.truncate:
            self._exec(f"TRUNCATE TABLE {quote(t)}")
            return 0
        if os.environ.get("PHOENIX_FAULT_SCRUB_IN_PLACE") == "1":
            return self._table_in_place(trule, progress)
        inlined = t in self.inlined.tables
        sql_cols = {} if inlined else set_based(trule)
        keep = f"NOT COALESCE(({trule.delete_where}), FALSE)" if trule.delete_where else None
        if inlined and t in self.inlined.keys:  # rewritten on the way in: its held-back keys were missing
            add_keys(self.conn, t, t, self.inlined.keys[t], self._columns(t, set_based(trule)))
        total = self._count(t, keep)
        scrubs = [c for c, r in trule.columns.items() if r.strategy == "scrub"]
        texts: dict[str, str] = {}
        try:
            for i, col in enumerate(scrubs):
                if self._scrub(t, col, f"{SCRUBBED}{i}", progress):
                    texts[col] = f"{SCRUBBED}{i}"
            if (sql_cols and total) or texts or keep:
                self._rewrite(t, sql_cols, total, progress, texts, keep)
        finally:
            for i in range(len(scrubs)):
                self._exec(f"DROP TABLE IF EXISTS `{SCRUBBED}{i}`")
        return total

    def _table_in_place(self, trule: TableRule, progress: Progress) -> int:
        """Fault switch PHOENIX_FAULT_SCRUB_IN_PLACE=1 only: the former path, DELETE and
        UPDATE in place, whose leftovers the forensic gate's test must find."""
        t = trule.name
        if trule.delete_where:
            self._exec(f"DELETE FROM {quote(t)} WHERE {trule.delete_where}")
        sql_cols = set_based(trule)
        total = self._count(t, None)
        if t in self.inlined.tables:
            if t in self.inlined.keys:
                add_keys(self.conn, t, t, self.inlined.keys[t], self._columns(t, sql_cols))
        elif sql_cols and total:
            self._rewrite(t, sql_cols, total, progress)
        pk = _pk(self.conn, t)
        for col in [c for c, r in trule.columns.items() if r.strategy == "scrub"]:
            try:
                if self._scrub(t, col, SCRUBBED, progress):
                    self._exec(
                        f"UPDATE {quote(t)} x JOIN {quote(SCRUBBED)} s ON x.{quote(pk)} = s.pk SET x.{quote(col)} = s.v"
                    )
            finally:
                self._exec(f"DROP TABLE IF EXISTS {quote(SCRUBBED)}")
        return total

    def _count(self, t: str, keep: str | None) -> int:
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM {quote(t)}" + (f" WHERE {keep}" if keep else ""))
            return cur.fetchone()[0]

    def select_list(
        self,
        t: str,
        sql_cols: dict[str, ColumnRule],
        columns: list[str] | None = None,
        overrides: dict[str, str] | None = None,
        aliased: bool = False,
    ) -> str:
        """The pseudonymizing SELECT list over rows aliased `t` (all columns, or `columns`, in
        order); `overrides` gives some columns' expressions outright; `aliased`: each named
        after its column."""
        self._nvar = 0
        overrides = overrides or {}
        return ", ".join(
            (
                overrides[c]
                if c in overrides
                else self._column_sql(t, c, sql_cols[c])
                if c in sql_cols
                else f"t.{quote(c)}"
            )
            + (f" AS {quote(c)}" if aliased else "")
            for c in (columns or self.schema[t])
        )

    def _columns(self, t: str, sql_cols: dict[str, ColumnRule]) -> dict[str, Column]:
        return {c: Column(r.strategy, *self.schema[t][c]) for c, r in sql_cols.items()}

    def _rewrite(
        self,
        t: str,
        sql_cols: dict[str, ColumnRule],
        total: int,
        progress: Progress,
        texts: dict[str, str] | None = None,
        keep: str | None = None,
    ) -> None:
        """`texts`: column -> table of (pk, scrubbed text) for the rows whose text changed;
        `keep`: the rows to keep (the others are not copied: that is the `delete_where`)."""
        texts = texts or {}
        pk = _pk(self.conn, t) if texts else None
        over = {c: f"COALESCE(s{i}.v, t.{quote(c)})" for i, c in enumerate(texts)}
        joins = "".join(
            f" LEFT JOIN {quote(tmp)} s{i} ON s{i}.pk = t.{quote(pk)}" for i, tmp in enumerate(texts.values())
        )
        src = f"(SELECT * FROM {quote(t)} WHERE {keep})" if keep else f"{quote(t)}"
        rewrite(
            self.conns,
            t,
            f"SELECT {self.select_list(t, sql_cols, overrides=over)} FROM {src} t{joins}",
            self._columns(t, sql_cols),
        )
        progress(t, total, total)


def anonymize(
    admin: AdminAccess,
    database: str,
    rules: Rules,
    key: bytes,
    progress: Progress | None = None,
    workers: int | None = None,
    inlined: Inlined | None = None,
    before: Callable[[], object] | None = None,
) -> AnonymizeReport:
    """`before` runs once the side session's key builds have started and before any table
    is rewritten: the gate's baseline, which must still see the originals, overlaps them."""
    progress = progress or (lambda *_: None)
    # One session per core: a table's rows are written as slices in parallel.
    conns = [connect(admin, database) for _ in range(workers or min(4, os.cpu_count() or 1))]
    report = AnonymizeReport(inlined=set(inlined.tables) if inlined else set())
    try:
        eng = Engine(conns, rules, key, inlined=inlined)
        eng.prepare()
        # Tables anonymized during the restore only need their held-back keys: those (single-
        # threaded) index builds run on a side session while the main one does the rest.
        side = [r for r in rules.tables.values() if eng.keys_only(r)]
        main = [r for r in rules.tables.values() if not eng.keys_only(r)]
        try:
            with ThreadPoolExecutor(1) as pool:
                if side:
                    conns.append(connect(admin, database))
                    background = pool.submit(_tables, eng.sibling(conns[-1]), side, report, progress)
                if before is not None:
                    before()
                eng.read_texts()  # the tables are not rewritten yet (the side session only adds keys)
                _tables(eng, main, report, progress)
                if side:
                    background.result()
        except BaseException:
            # A lost connection makes the cleanup fail too: never let that hide the cause.
            with contextlib.suppress(pymysql.MySQLError):
                eng.cleanup()
            raise
        eng.cleanup()
        report.written = set(eng.texts.written)
        report.known, report.known_seconds = len(eng.texts), eng.texts_seconds
    finally:
        for conn in conns:
            conn.close()
    order = list(rules.tables)
    for d in (report.rows, report.seconds, report.applied):
        ordered = sorted(d.items(), key=lambda kv: order.index(kv[0]))
        d.clear()
        d.update(ordered)  # type: ignore[arg-type]  # the same items, in the rules' order
    return report


def _tables(eng: Engine, trules: list[TableRule], report: AnonymizeReport, progress: Progress) -> None:
    for trule in trules:
        t0 = time.monotonic()
        report.rows[trule.name] = eng.table(trule, progress)
        report.seconds[trule.name] = time.monotonic() - t0
        report.applied[trule.name] = {c: r.strategy for c, r in trule.columns.items() if r.changes}
