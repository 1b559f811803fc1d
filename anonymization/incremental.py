"""Applying a source's row changes to an anonymized copy, each row pseudonymized by the
same rule SQL as a full cycle (`Engine.select_list`, as inline.py uses it): a pseudonym
is a keyed function of the original, so the copy ends as a full cycle of the same source
state would make it.

The session behaves as a replica's: foreign keys checked and their cascades done here
(the source's binary log does not carry cascaded rows), unique keys checked, and no trigger
fires — the rows a trigger changed on the source are in the log already; the copy's
triggers are taken off for the apply and put back after (`close`). Per row event:

    insert  INSERT INTO t (cols) SELECT <rule SQL> FROM (<rows as literals>) t [WHERE <kept>]
    update  UPDATE t x JOIN (SELECT <rule SQL> … ) n ON x.<pk> = n.<pk> SET x.c = n.c, …
    delete  DELETE x FROM t x JOIN (SELECT <rule SQL of the key> …) k ON x.<pk> = k.<pk>

A key with a rule works because its pseudonym is deterministic. Consecutive events of one
table and kind go as one statement. `truncate` tables are passed over; a `delete_where`
filters the incoming rows (an update whose new row it drops deletes the old one). An
update or delete that does not find its row means the copy and the source diverged: an
AnonymizationError, never a silently different golden. What the rules cannot do row by row
is IncrementalUnsupported: a changed free text (the scrub's dictionary is built from whole
tables), a changed identifying column when texts are scrubbed (the dictionary changes, and
with it how unchanged texts scrub — a 45 MB cycle gave another support_tickets than a full
one), a primary key changed by an update, a table without one.

Every changed row's original values also go, as they came, into `_phx_orig_<table>`
(key-less MyISAM: no redo or undo log holds them), the gate's baseline is read from there
and they are dropped before the breeder is stopped. A deleted row's bytes do not stay in
its page: the breeder runs with `innodb_immediate_scrub_data_uncompressed` (tasks/runtime).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pymysql
from pymysql.constants import CLIENT

from anonymization._fk_order import fk_depths
from anonymization._literals import Literals
from anonymization.engine import Engine, set_based
from anonymization.freetext import capture_columns, has_scrub
from anonymization.inline import sample_table
from anonymization.rewrite import Trigger, create_trigger, triggers_of
from anonymization.rules import Rules
from phoenix.db import AdminAccess, quote
from phoenix.errors import AnonymizationError, IncrementalUnsupported

BATCH = 500  # rows per statement
NUMBER = "_phx_n"  # a staged row's number: the statements read their rows from the stage by it
Staged = tuple[str, int, int] | None
WINDOW = 5000  # rows held and grouped before they are written (a commit writes them too)


@dataclass
class Applied:
    """What the apply did, per `db.table`: rows by kind. Holds no original value."""

    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    staged: dict[str, set[str]] = field(default_factory=dict)  # db -> tables with staged originals
    # db -> table -> the keys of the rows written (their values: the key has no rule), or
    # None when the key has a rule (the copy's keys are pseudonyms: the table is searched whole)
    written: dict[str, dict[str, list[tuple] | None]] = field(default_factory=dict, repr=False)

    def count(self, db: str, table: str, kind: str, n: int) -> None:
        per = self.rows.setdefault(f"{db}.{table}", {"insert": 0, "update": 0, "delete": 0})
        per[kind] += n


class Applier:
    """One session on the breeder that applies changes in order (`apply`, then `commit`)."""

    def __init__(self, admin: AdminAccess, rules: dict[str, Rules], key: bytes, *, raw: bool = False) -> None:
        """`raw`: fault injection only — rows go in as they came (the gate must stop them)."""
        self.conn = pymysql.connect(
            **admin.pymysql_kwargs(),
            charset="utf8mb4",
            autocommit=False,
            client_flag=CLIENT.FOUND_ROWS,
            read_timeout=3600,
            write_timeout=3600,
        )
        self.rules, self.raw = rules, raw
        self.engines: dict[str, Engine] = {}
        for db, db_rules in rules.items():
            self.conn.select_db(db)
            eng = Engine([self.conn], db_rules, key)
            eng.prepare()  # the family pads as session variables (the same key for every database)
            self.engines[db] = eng
        self._exec("SET SESSION foreign_key_checks = 1, unique_checks = 1, time_zone = '+00:00'")
        self._triggers = self._hold_triggers()
        self.done = Applied()
        self._selects: dict[tuple, str] = {}
        self._prepared: dict[tuple, str] = {}
        self._window: dict[tuple, list] = {}  # (db, table, kind, columns) -> rows, in first-seen order
        self._touched: set[tuple] = set()  # (db, table, key) of the rows in the window
        self._held = 0
        self._depths: dict[str, dict[str, int] | None] = {}
        self._pks: dict[tuple[str, str], list[str]] = {}
        self._numbered = 0
        self._literal = Literals(self.conn)

    def close(self) -> None:
        """Puts the triggers back (also after a failure: the breeder stays consistent)."""
        try:
            for db, triggers in self._triggers.items():
                self.conn.select_db(db)
                for tr in triggers:
                    create_trigger(self.conn, tr)
        finally:
            self.conn.close()

    def _hold_triggers(self) -> dict[str, list[Trigger]]:
        held: dict[str, list[Trigger]] = {}
        for db in self.rules:
            self.conn.select_db(db)
            with self.conn.cursor() as cur:
                cur.execute(
                    "SELECT DISTINCT EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS "
                    "WHERE EVENT_OBJECT_SCHEMA = DATABASE()"
                )
                tables = [t for (t,) in cur.fetchall()]
            held[db] = [tr for t in tables for tr in triggers_of(self.conn, t)]
            for tr in held[db]:
                self._exec(f"DROP TRIGGER {quote(db)}.{quote(tr.name)}")
        return held

    def __enter__(self) -> Applier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the stream ----------------------------------------------------------------------------
    def apply(self, database: str, table: str, kind: str, rows: Iterable) -> None:
        eng = self.engines.get(database)
        if eng is None:
            return
        if table not in eng.schema:
            raise IncrementalUnsupported(
                f"table {database}.{table} is not in the last golden: a table created since needs a full cycle"
            )
        trule = eng.rules.tables.get(table)
        if trule is not None and trule.truncate:
            return
        if kind != "delete" and trule is not None and any(r.strategy == "scrub" for r in trule.columns.values()):
            raise IncrementalUnsupported(
                f"rows of {database}.{table} changed, and its free text is scrubbed: the "
                "scrub's dictionary is built from whole tables, so it runs in a full cycle"
            )
        pk = self._pk(database, table)
        dictionary = capture_columns(trule) if trule is not None and has_scrub(eng.rules) else []
        for row in rows:
            if dictionary and (kind != "update" or any(row[0][c] != row[1][c] for c in dictionary)):
                raise IncrementalUnsupported(
                    f"identifying columns of {database}.{table} changed, and free text is scrubbed with a "
                    "dictionary of them: texts that did not change may scrub differently now, so it runs in a full cycle"
                )
            values = row[1] if kind == "update" else row
            cols = list(values)
            if set(cols) != set(eng.schema[table]):
                raise IncrementalUnsupported(
                    f"the columns of {database}.{table} in the binary log differ from the "
                    "last golden's: its definition changed"
                )
            if kind == "update" and any(row[0][k] != row[1][k] for k in pk):
                raise IncrementalUnsupported(f"an update of {database}.{table} changes its primary key")
            group, touched = (database, table, kind, tuple(cols)), (database, table, tuple(values[k] for k in pk))
            if (
                touched in self._touched
                or self._held >= WINDOW
                or (not self._ranks(database) and self._window and group not in self._window)
            ):
                self.flush()
            self._window.setdefault(group, []).append(row)
            self._touched.add(touched)
            self._held += 1

    def flush(self) -> None:
        """The window's rows, grouped: inserts parents first, then updates, then deletes children
        first — the order of the source's commits, up to rows no two of which are the same row
        (a second change of one row flushes first) and foreign keys (the groups' order)."""
        window, self._window, self._touched, self._held = self._window, {}, set(), 0
        order = {"insert": 0, "update": 1, "delete": 2}

        def rank(g: tuple) -> tuple[int, int]:
            depth = (self._ranks(g[0]) or {}).get(g[1], 0)
            return order[g[2]], -depth if g[2] == "delete" else depth

        for group in sorted(window, key=rank):  # stable: groups of one rank keep their order
            db, table, kind, cols = group
            rows = window[group]
            for i in range(0, len(rows), BATCH):
                self._flush_group(db, table, kind, list(cols), rows[i : i + BATCH])

    def _ranks(self, db: str) -> dict[str, int] | None:
        if db not in self._depths:
            self._depths[db] = fk_depths(self.conn, db)
        return self._depths[db]

    def _flush_group(self, db: str, table: str, kind: str, cols: list[str], rows: list) -> None:
        images = [r[1] for r in rows] if kind == "update" else rows
        staged = self._stage(db, table, cols, images, [r[0] for r in rows] if kind == "update" else [])
        if kind != "delete":
            self._written(db, table, images)
        {"insert": self._insert, "update": self._update, "delete": self._delete}[kind](db, table, cols, images, staged)
        self.done.count(db, table, kind, len(rows))

    def commit(self) -> None:
        self.flush()
        self.conn.commit()

    # -- the statements ------------------------------------------------------------------------
    # The rule SQL of a table is long (customers: 260 KB, the dictionaries inline): each statement
    # is prepared once per table, kind and row count, and run with the rows' values as parameters.
    def _insert(self, db: str, table: str, cols: list[str], rows: list[dict], staged: Staged) -> None:
        where = self._kept(db, table)
        select = self._select(db, table, cols, aliased=False)
        self._run(
            ("insert", db, table),
            f"INSERT INTO {quote(db)}.{quote(table)} ({', '.join(map(quote, cols))}) "
            f"SELECT {select} FROM ({{rows}}) t" + (f" WHERE {where}" if where else ""),
            cols,
            rows,
            staged,
        )

    def _update(self, db: str, table: str, cols: list[str], rows: list[dict], staged: Staged) -> None:
        pk, where = self._pk(db, table), self._kept(db, table)
        target = f"{quote(db)}.{quote(table)}"
        new = f"SELECT {self._select(db, table, cols)} FROM ({{rows}}) t" + (f" WHERE {where}" if where else "")
        on = " AND ".join(f"x.{quote(k)} = n.{quote(k)}" for k in pk)
        sets = ", ".join(f"x.{quote(c)} = n.{quote(c)}" for c in cols if c not in pk)
        matched = (
            self._run(("update", db, table), f"UPDATE {target} x JOIN ({new}) n ON {on} SET {sets}", cols, rows, staged)
            if sets
            else len(rows)
        )
        if not where:
            self._expect(matched, len(rows), "update", db, table)
            return
        # `delete_where`: the old row may have been dropped by it (then the new one comes in),
        # or the new one is (then the old one goes).
        self._run(
            ("update-in", db, table),
            f"INSERT INTO {target} ({', '.join(map(quote, cols))}) SELECT n.* FROM "
            f"({new}) n LEFT JOIN {target} x ON {on} WHERE x.{quote(pk[0])} IS NULL",
            cols,
            rows,
            staged,
        )
        gone = f"SELECT {self._select(db, table, pk)} FROM ({{rows}}) t WHERE NOT ({where})"
        self._run(("update-out", db, table), f"DELETE x FROM {target} x JOIN ({gone}) n ON {on}", cols, rows, staged)

    def _delete(self, db: str, table: str, cols: list[str], rows: list[dict], staged: Staged) -> None:
        pk = self._pk(db, table)
        keys = f"SELECT {self._select(db, table, pk)} FROM ({{rows}}) t"
        on = " AND ".join(f"x.{quote(k)} = n.{quote(k)}" for k in pk)
        matched = self._run(
            ("delete", db, table),
            f"DELETE x FROM {quote(db)}.{quote(table)} x JOIN ({keys}) n ON {on}",
            cols,
            rows,
            staged,
        )
        if not self._kept(db, table):
            self._expect(matched, len(rows), "delete", db, table)

    def _select(self, db: str, table: str, out: list[str], aliased: bool = True) -> str:
        """The rule SQL of columns `out` over rows aliased `t` (built once per table and columns)."""
        key = (db, table, tuple(out), aliased)
        if key not in self._selects:
            self._selects[key] = self.engines[db].select_list(table, self._sql_cols(db, table), out, aliased=aliased)
        return self._selects[key]

    def _run(self, key: tuple, template: str, cols: list[str], rows: list[dict], staged: Staged) -> int:
        """`template` with `{rows}` for the rows' derived table; returns the rows matched. Staged
        rows are read from the stage by their numbers (each value went to the server once);
        a table without rules gets them as parameters, in chunks of 2^k rows (a few prepared
        forms per statement)."""
        if staged is not None:
            name = self._prepare((key, tuple(cols), "staged"), template.replace("{rows}", staged[0]))
            return self._exec(f"EXECUTE {name} USING {', '.join(map(str, staged[1:] * template.count('{rows}')))}")
        matched, done = 0, 0
        while done < len(rows):
            n = 1 << (len(rows) - done).bit_length() - 1
            derived = (
                "SELECT "
                + ", ".join(f"? AS {quote(c)}" for c in cols)
                + "".join(" UNION ALL SELECT " + ", ".join("?" for _ in cols) for _ in range(n - 1))
            )
            name = self._prepare((key, tuple(cols), n), template.replace("{rows}", derived))
            args = ", ".join(self._literal(r[c]) for r in rows[done : done + n] for c in cols)
            matched += self._exec(f"EXECUTE {name} USING {args}")
            done += n
        return matched

    def _prepare(self, key: tuple, sql: str) -> str:
        name = self._prepared.get(key)
        if name is None:
            name = f"phx_s{len(self._prepared)}"
            self._exec(f"PREPARE {name} FROM {self.conn.escape(sql)}")
            self._prepared[key] = name
        return name

    def _stage(self, db: str, table: str, cols: list[str], images: list[dict], before: list[dict]) -> Staged:
        """The rows' originals into the table's stage (the gate's baseline), `images` numbered
        so that the statements read them from there: (derived table, first, last) — or None
        for a table without rules (nothing personal to look for: no stage)."""
        if table not in self.engines[db].rules.tables:
            return None
        self.stage_empty(db, table)
        target = f"{quote(db)}.{quote(sample_table(table))}"
        names = ", ".join(map(quote, [NUMBER, *cols]))
        first = self._numbered
        self._numbered += len(images) + len(before)
        self._exec(f"INSERT INTO {target} ({names}) VALUES {self._literal.rows(cols, images + before, first)}")
        derived = f"SELECT * FROM {target} WHERE {quote(NUMBER)} BETWEEN ? AND ?"
        return derived, first, first + len(images) - 1

    def stage_empty(self, db: str, table: str) -> None:
        """The (empty) stage of a table's originals, once."""
        staged = self.done.staged.setdefault(db, set())
        if table not in staged:
            target = f"{quote(db)}.{quote(sample_table(table))}"
            self._exec(f"DROP TABLE IF EXISTS {target}")
            self._exec(
                f"CREATE TABLE {target} ({quote(NUMBER)} BIGINT NOT NULL DEFAULT 0, KEY ({quote(NUMBER)})) ENGINE=MyISAM "
                f"SELECT * FROM {quote(db)}.{quote(table)} LIMIT 0"
            )
            staged.add(table)

    def _written(self, db: str, table: str, rows: list[dict]) -> None:
        pk, per = self._pk(db, table), self.done.written.setdefault(db, {})
        if any(k in self._sql_cols(db, table) for k in pk):
            per[table] = None
        elif per.get(table, []) is not None:
            per.setdefault(table, []).extend(tuple(r[k] for k in pk) for r in rows)  # type: ignore[union-attr]

    def scope(self, db: str) -> dict[str, str]:
        """The gate's leak search reads these rows only (`Baseline.scope`): those written."""
        out = {}
        for t, keys in self.done.written.get(db, {}).items():
            if keys is None:
                out[t] = ""
                continue
            cols = self._pk(db, t)
            lhs = quote(cols[0]) if len(cols) == 1 else "(" + ", ".join(map(quote, cols)) + ")"
            vals = (
                self._literal(k[0]) if len(cols) == 1 else "(" + ", ".join(map(self._literal, k)) + ")"
                for k in sorted(set(keys))
            )
            out[t] = f"{lhs} IN ({', '.join(vals)})"
        return out

    def drop_staged(self) -> None:
        for db, tables in self.done.staged.items():
            for t in tables:
                self._exec(f"DROP TABLE IF EXISTS {quote(db)}.{quote(sample_table(t))}")
        self.conn.commit()

    # -- helpers -------------------------------------------------------------------------------
    def _sql_cols(self, db: str, table: str) -> dict:
        trule = self.engines[db].rules.tables.get(table)
        return set_based(trule) if trule is not None and not self.raw else {}

    def _kept(self, db: str, table: str) -> str | None:
        trule = self.engines[db].rules.tables.get(table)
        return f"NOT COALESCE(({trule.delete_where}), FALSE)" if trule is not None and trule.delete_where else None

    def _pk(self, db: str, table: str) -> list[str]:
        cache = self._pks
        if (db, table) not in cache:
            with self.conn.cursor() as cur:
                cur.execute(f"SHOW KEYS FROM {quote(db)}.{quote(table)} WHERE Key_name = 'PRIMARY'")
                cache[(db, table)] = [r[4] for r in sorted(cur.fetchall(), key=lambda r: r[3])]
        if not cache[(db, table)]:
            raise IncrementalUnsupported(
                f"table {db}.{table} has no primary key: its changed rows cannot be found in the copy"
            )
        return cache[(db, table)]

    def _exec(self, sql: str) -> int:
        with self.conn.cursor() as cur:
            try:
                return cur.execute(sql)
            except pymysql.IntegrityError as exc:  # its text quotes the row's values: not passed on
                code = exc.args[0] if exc.args else "?"
                what = "a unique key (two pseudonyms collide)" if code == 1062 else "a foreign key"
                raise IncrementalUnsupported(
                    f"a changed row breaks {what} in the copy (error {code}): a full cycle resolves what depends "
                    "on other rows"
                ) from None

    @staticmethod
    def _expect(matched: int, want: int, kind: str, db: str, table: str) -> None:
        if matched != want:
            raise AnonymizationError(
                f"{kind} of {db}.{table} found {matched} of {want} rows in the copy: the last "
                "golden and the source's binary log diverged; run a full cycle (mode=full)"
            )
