"""The table checksums of an incremental cycle, by difference.

CHECKSUM TABLE is the sum of its rows' checksums, modulo 2^32, whatever the engine. So after
the apply a table's checksum is the last golden's, minus the checksum of its changed rows as
they were, plus that of the same keys' rows as they are — two reads of the changed rows
instead of every row of the copy (1 GB, cold: 2.6-2.8 s in the gate).

The rows as they were are copied before an update or delete reaches them (`_phx_was_<t>`,
key-less of anything but the primary key, MyISAM), the first time a key is touched
(`_phx_key_<t>` holds the keys touched: inserted keys too, so a row new in this cycle is
never taken for one of the golden's). A foreign key's cascade changes rows the binary log
does not carry: before a delete, the rows its ON DELETE CASCADE / SET NULL keys reach are
copied too, down the cascades. What this cannot follow exactly — a table that is not
InnoDB, has generated columns, sits in a cycle of cascades or below an ON UPDATE action, or
a golden without checksums — is left out, and the gate reads it whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import pymysql

from phoenix.db import quote
from phoenix.errors import IncrementalUnsupported

WAS, KEY, NOW = "_phx_was_", "_phx_key_", "_phx_now_"
_MOD = 1 << 32
_ACTIONS = ("CASCADE", "SET NULL", "SET DEFAULT")


@dataclass(frozen=True)
class _Fk:
    child: str
    cols: tuple[str, ...]  # the child's columns
    ref: tuple[str, ...]  # the parent's columns
    on_delete: str


class Delta:
    """Kept by the incremental `Applier`: `before` each group it writes, `finish` after the last."""

    def __init__(self, applier, databases: list[str]) -> None:
        self.a = applier
        self.tracked: dict[tuple[str, str], bool] = {}  # (db, table) -> its was/key tables exist (False: read whole)
        self._children: dict[str, dict[str, list[_Fk]]] = {db: self._fks(db) for db in databases}
        self._untrackable: dict[str, set[str]] = {db: self._excluded(db) for db in databases}

    # -- what the apply calls --------------------------------------------------------------
    def before(self, db: str, table: str, kind: str, cols: list[str], rows: list, staged) -> None:
        """Before a group of `kind` is written: the rows it (and its cascades) will change, as they are."""
        keys = f"SELECT {self.a._select(db, table, self.a._pk(db, table))} FROM ({{rows}}) t"
        self._capture(db, table, [(table, None)], keys, cols, rows, staged)
        if kind == "delete" or (kind == "update" and self.a._kept(db, table)):  # `delete_where` deletes too
            self._cascade(db, [(table, None)], keys, cols, rows, staged)

    def finish(self, golden: dict[str, int], named) -> dict[str, int]:
        """`named(db, table)` -> checksum of every table that follows without being read whole:
        the golden's where nothing touched it, by difference where the apply tracked it. Drops
        the tables it kept."""
        out: dict[str, int] = {}
        for db, eng in self.a.engines.items():
            for t in eng.schema:
                name = named(db, t)
                state = self.tracked.get((db, t))
                if name not in golden or state is False or t in self._untrackable[db]:
                    continue  # (an untrackable table may change with no group of its own: read it)
                out[name] = golden[name] if state is None else (golden[name] + self._difference(db, t)) % _MOD
        self.drop()
        return out

    def drop(self) -> None:
        for (db, t), state in self.tracked.items():
            if state:
                for prefix in (WAS, KEY, NOW):
                    self.a._exec(f"DROP TABLE IF EXISTS {quote(db)}.{quote(prefix + t)}")

    # -- the copies --------------------------------------------------------------------------
    def _difference(self, db: str, t: str) -> int:
        pk = self.a._pk(db, t)
        was, key, now = (f"{quote(db)}.{quote(p + t)}" for p in (WAS, KEY, NOW))
        on = " AND ".join(f"x.{quote(k)} = k.{quote(k)}" for k in pk)
        self.a._exec(f"DROP TABLE IF EXISTS {now}")
        self.a._exec(f"CREATE TABLE {now} LIKE {was}")
        self.a._exec(f"INSERT INTO {now} SELECT x.* FROM {quote(db)}.{quote(t)} x JOIN {key} k ON {on}")
        with self.a.conn.cursor() as cur:
            cur.execute(f"CHECKSUM TABLE {was}, {now}")
            before, after = (int(c or 0) for _name, c in cur.fetchall())
        return after - before

    def _capture(self, db: str, table: str, path: list, keys: str, cols, rows, staged) -> None:
        """The rows at the end of `path` that `keys` reach, as they are, unless touched before;
        then their keys are touched (a group's own keys all: an insert's rows are not there yet)."""
        t = path[-1][0]
        if not self._ready(db, t):
            return
        pk = self.a._pk(db, t)
        end, into = f"y{len(path) - 1}", f"{quote(db)}.{quote(KEY + t)}"
        seen = " AND ".join(f"k.{quote(c)} = {end}.{quote(c)}" for c in pk)
        name = (db, table, *[(p[0], p[1].cols if p[1] else ()) for p in path])
        self.a._run(
            ("was", *name),
            f"INSERT INTO {quote(db)}.{quote(WAS + t)} SELECT {end}.* FROM {self._joins(db, path, keys)} "
            f"LEFT JOIN {into} k ON {seen} WHERE k.{quote(pk[0])} IS NULL",
            cols,
            rows,
            staged,
        )
        touched = (
            f"SELECT {', '.join(f'n.{quote(c)}' for c in pk)} FROM ({keys}) n"
            if len(path) == 1
            else f"SELECT {', '.join(f'{end}.{quote(c)}' for c in pk)} FROM {self._joins(db, path, keys)}"
        )
        self.a._run(("key", *name), f"INSERT IGNORE INTO {into} {touched}", cols, rows, staged)

    def _joins(self, db: str, path: list, keys: str) -> str:
        """`path`'s tables joined from the changed rows' keys down the foreign keys: y0 … yN."""
        pk = self.a._pk(db, path[0][0])
        sql = f"({keys}) n JOIN {quote(db)}.{quote(path[0][0])} y0 ON " + " AND ".join(
            f"y0.{quote(c)} = n.{quote(c)}" for c in pk
        )
        for i, (t, fk) in enumerate(path[1:], 1):
            on = " AND ".join(f"y{i}.{quote(c)} = y{i - 1}.{quote(r)}" for c, r in zip(fk.cols, fk.ref, strict=True))
            sql += f" JOIN {quote(db)}.{quote(t)} y{i} ON {on}"
        return sql

    def _cascade(self, db: str, path: list, keys: str, cols, rows, staged) -> None:
        for fk in self._children[db].get(path[-1][0], []):
            if fk.on_delete not in _ACTIONS:
                continue
            if any(p[0] == fk.child for p in path) or len(path) > 8:
                self.tracked[(db, fk.child)] = False  # a cycle of cascades: read whole
                continue
            below = [*path, (fk.child, fk)]
            self._capture(db, path[0][0], below, keys, cols, rows, staged)
            if fk.on_delete == "CASCADE":
                self._cascade(db, below, keys, cols, rows, staged)

    def _ready(self, db: str, t: str) -> bool:
        """The table's was and key tables, made the first time it is touched; False (and read
        whole at the gate) if it cannot be followed."""
        if (db, t) not in self.tracked:
            ok = t not in self._untrackable[db] and bool(self._pk(db, t))
            if ok:
                pk = ", ".join(map(quote, self.a._pk(db, t)))
                was, key = f"{quote(db)}.{quote(WAS + t)}", f"{quote(db)}.{quote(KEY + t)}"
                try:
                    for sql in (
                        f"DROP TABLE IF EXISTS {was}",
                        f"DROP TABLE IF EXISTS {key}",
                        f"CREATE TABLE {was} LIKE {quote(db)}.{quote(t)}",
                        f"ALTER TABLE {was} ENGINE=MyISAM CHECKSUM=0",
                        f"CREATE TABLE {key} (PRIMARY KEY ({pk})) ENGINE=MyISAM "
                        f"SELECT {pk} FROM {quote(db)}.{quote(t)} LIMIT 0",
                    ):
                        self.a._exec(sql)
                except pymysql.MySQLError:  # a name too long, an option MyISAM refuses: read it whole
                    ok = False
            self.tracked[(db, t)] = ok
        return self.tracked[(db, t)]

    # -- the schema ----------------------------------------------------------------------------
    def _pk(self, db: str, t: str) -> list[str]:
        try:
            return self.a._pk(db, t)
        except IncrementalUnsupported:  # a cascade's table without a primary key: read whole
            return []

    def _fks(self, db: str) -> dict[str, list[_Fk]]:
        """Parent table -> the foreign keys that reference it from this database."""
        with self.a.conn.cursor() as cur:
            cur.execute(
                "SELECT k.CONSTRAINT_NAME, k.TABLE_NAME, k.REFERENCED_TABLE_NAME, k.COLUMN_NAME, "
                "k.REFERENCED_COLUMN_NAME, r.DELETE_RULE FROM information_schema.KEY_COLUMN_USAGE k "
                "JOIN information_schema.REFERENTIAL_CONSTRAINTS r ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA "
                "AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME "
                "WHERE k.TABLE_SCHEMA = %s AND k.REFERENCED_TABLE_SCHEMA = %s ORDER BY 1, 2, k.ORDINAL_POSITION",
                (db, db),
            )
            parts: dict[tuple[str, str], list] = {}
            for name, child, parent, col, ref, rule in cur.fetchall():
                parts.setdefault((name, child), [child, parent, [], [], rule])
                parts[(name, child)][2].append(col)
                parts[(name, child)][3].append(ref)
        out: dict[str, list[_Fk]] = {}
        for child, parent, cols, refs, rule in parts.values():
            out.setdefault(parent, []).append(_Fk(child, tuple(cols), tuple(refs), rule))
        return out

    def _excluded(self, db: str) -> set[str]:
        """Tables whose checksum does not follow by difference: not InnoDB, generated columns,
        below an ON UPDATE action or a foreign key from another database (rows can change there
        that no group of this apply names)."""
        with self.a.conn.cursor() as cur:
            cur.execute(
                "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND ENGINE <> 'InnoDB' "
                "UNION SELECT TABLE_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                "AND IS_GENERATED <> 'NEVER' "
                "UNION SELECT TABLE_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s "
                "AND (UPDATE_RULE IN ('CASCADE', 'SET NULL', 'SET DEFAULT') OR UNIQUE_CONSTRAINT_SCHEMA <> %s)",
                (db, db, db, db),
            )
            out = {t for (t,) in cur.fetchall()}
        grown = True
        while grown:  # and everything their cascades reach
            below = {fk.child for t in out for fk in self._children[db].get(t, [])}
            grown = not below <= out
            out |= below
        return out
