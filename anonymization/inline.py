"""Anonymizing rows on their way into the breeder, inside the restore.

Rewriting a table after the restore reads and writes every row a second time and builds
its indexes again (the 1 GB shop: restore 60 s, then anonymize 53 s on btrfs). A dump's
extended INSERT can carry the same pseudonymizing SELECT instead:

    INSERT INTO `t` VALUES (…),(…)
 -> INSERT INTO `t` WITH _phx_rows(`a`, `b`, …) AS (VALUES (…),(…)) SELECT <rule SQL> FROM _phx_rows t

The rule SQL is the engine's own (`Engine.select_list`), so the pseudonyms are the same
as a post-restore rewrite gives; the server evaluates it while it inserts (restore +
anonymize: 69 s instead of 113 s, measured side by side). What stays for the engine
afterwards: free-text scrubbing, and the secondary and foreign keys of these tables,
which the restore holds back (tasks/sources/_keys.py) so that colliding pseudonyms are
resolved when the unique ones are added, exactly as in a rewrite.

Only tables whose rules are all set-based qualify: a `delete_where` may test original
values, and `truncate` empties the table anyway. The gate needs a sample of the original
values: every `SAMPLE_EVERY`-th INSERT of a table (the first included) also goes, as it
came, into `_phx_orig_<table>`; the baseline is read from those, which are dropped right
after (`drop_samples`) — before anything is snapshotted.

The free-text scrub needs the originals of these tables' identifying columns too (names,
e-mails, … quoted inside ticket bodies, see freetext.py). When the rules scrub any column,
each such INSERT is followed by one that copies only those columns, as they came, and the
row's primary key (the dictionary then reads the row's pseudonyms instead of computing them
again, _dictionary.py) into a narrow index-less MyISAM table `_phx_text_<table>` (no redo or
undo log holds them; appending there cost 1.25 s where InnoDB cost 1.83 s, beside 5.30 s for
the pseudonymizing INSERTs of the same five shop tables at scale 20, one connection); the
engine reads its distinct values into memory before the scrub and drops it (the seal,
zeroing and the forensic gate then clean and check the breeder's bytes):

    INSERT INTO `_phx_text_t` (`a`, `id`) WITH _phx_rows(`id`, `a`, …) AS (VALUES (…)) SELECT `a`, `id` FROM _phx_rows
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from anonymization.engine import Engine, Inlined, connect, schema, set_based
from anonymization.freetext import capture_columns, capture_table, has_scrub
from anonymization.rewrite import primary_key
from anonymization.rules import Rules
from phoenix.db import AdminAccess, quote

SAMPLE_EVERY = 16
_INSERT = re.compile(rb"^((?:INSERT|REPLACE)(?: IGNORE)?) INTO `((?:[^`]|``)+)`( \([^)]*\))? VALUES\s*")
_COLUMN = re.compile(rb"`((?:[^`]|``)+)`")
_USE = re.compile(rb"^USE `((?:[^`]|``)+)`\s*$")

Statements = Iterator[tuple[int, bytes]]


def sample_table(table: str) -> str:
    return f"_phx_orig_{table}"


class _Database:
    """What the restore does to one database: its rules, and what it did there."""

    def __init__(self, name: str, rules: Rules) -> None:
        self.name, self.rules = name, rules
        self.eligible = {
            t: cols for t, r in rules.tables.items() if not r.truncate and not r.delete_where and (cols := set_based(r))
        }
        self.capture = (
            {t: cap for t in self.eligible if (cap := capture_columns(rules.tables[t]))} if has_scrub(rules) else {}
        )
        self.done = Inlined()
        self.samples: set[str] = set()
        self.schema: dict[str, dict[str, tuple[str, int | None]]] = {}
        self.heads: dict[tuple[bytes, str, bytes], tuple[bytes, bytes, tuple[bytes, bytes] | None]] = {}
        self.keys: dict[str, list[str]] = {}  # table -> the primary key its capture also holds
        self.count: dict[str, int] = {}


class Inline:
    """The restore-side half of the anonymization of a breeder: of `database`, or of each
    database the dump names (`USE`), each with its part of the rules (`Rules.for_database`;
    the home database of unqualified tables is the rules' `database:` or the first one)."""

    def __init__(self, admin: AdminAccess, database: str, rules: Rules, key: bytes) -> None:
        self.admin, self.database, self.rules, self.key = admin, database, rules, key
        self.home = rules.database
        self.dbs: dict[str, _Database] = {}
        self._current: _Database | None = None  # the dump's last USE; before any, `database`
        self._engine: Engine | None = None

    def _db(self, name: str) -> _Database:
        if name not in self.dbs:
            self.home = self.home or name
            self.dbs[name] = _Database(name, self.rules.for_database(name, name == self.home))
        return self.dbs[name]

    # what was done: in `database`, or in the only database a dump named
    def _main(self) -> _Database:
        return self.dbs.get(self.database) or (next(iter(self.dbs.values())) if self.dbs else self._db(self.database))

    @property
    def done(self) -> Inlined:
        return self._main().done

    @property
    def samples(self) -> set[str]:
        return self._main().samples

    def done_in(self, database: str) -> Inlined | None:
        return self.dbs[database].done if database in self.dbs else None

    def samples_in(self, database: str) -> set[str]:
        return self.dbs[database].samples if database in self.dbs else set()

    # -- used by the restore ------------------------------------------------------------------
    def open(self) -> list[tuple[str, tuple]]:
        """Start (one connection, the dictionaries); the session statements every restore
        connection runs first: the family keys' pads, as parameters (never in a statement),
        for the rules of every database at once."""
        if self._engine is None:
            # On information_schema (it always exists and holds no base table): each table's
            # schema is read in its own database (`_head`), whichever the dump names.
            conn = connect(self.admin, "information_schema")
            self._engine = Engine([conn], self.rules.everything(), self.key, check=False)
            self._engine.prepare()
        return self._engine.pad_statements()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.conn.close()
            self._engine = None

    def keys_held(self, keys: dict[tuple[str | None, str], list[str]]) -> None:
        """The key definitions the restore held back: the engine adds them after."""
        for (db, table), defs in keys.items():
            self._db(db or self.database).done.keys[table] = defs

    def holds(self, table: str, database: str | None = None) -> bool:
        """Whether the restore leaves this table's keys to the engine."""
        d = self.dbs.get(database or self.database)
        return d is not None and table in d.done.tables

    def wrap(self, stmts: Statements) -> Statements:
        for line, stmt in stmts:
            u = _USE.match(stmt.strip().rstrip(b";").rstrip())
            if u:
                self._current = self._db(u.group(1).decode().replace("``", "`"))
                yield line, stmt
                continue
            m = _INSERT.match(stmt)
            table = m.group(2).decode().replace("``", "`") if m else None
            d = self._current or self._db(self.database) if m else None
            if m is None or d is None or table not in d.eligible:
                yield line, stmt
                continue
            n = d.count[table] = d.count.get(table, 0) + 1
            if n % SAMPLE_EVERY == 1 or SAMPLE_EVERY == 1:
                yield from self._sample(d, line, stmt, table, m)
            head, tail, capture = self._head(d, m.group(1), table, m.group(3) or b"")
            d.done.tables.add(table)
            yield line, head + b"VALUES " + stmt[m.end() :] + tail
            if capture is not None:
                yield from self._capture(d, line, table, capture, stmt[m.end() :])

    def _capture(self, d: _Database, line: int, table: str, capture: tuple[bytes, bytes], values: bytes) -> Statements:
        """The originals of the columns the text dictionary needs (see the module's doc)."""
        target = capture_table(table)
        if table not in d.done.texts:
            d.done.texts[table] = target
            # The key's columns from an outer join's other side: nullable, so an INSERT
            # without them is captured too (that table is joined to nothing, see `_keys`).
            cols = ", ".join([f"t.{quote(c)}" for c in d.capture[table]] + [f"k.{quote(c)}" for c in d.keys[table]])
            yield line, f"DROP TABLE IF EXISTS {quote(target)}".encode()
            yield (
                line,
                f"CREATE TABLE {quote(target)} ENGINE=MyISAM SELECT {cols} "
                f"FROM {quote(table)} t LEFT JOIN {quote(table)} k ON FALSE LIMIT 0".encode(),
            )
        yield line, capture[0] + b"VALUES " + values + capture[1]

    def _sample(self, d: _Database, line: int, stmt: bytes, table: str, m: re.Match) -> Statements:
        sample = sample_table(table)
        if sample not in d.samples:
            d.samples.add(sample)
            yield line, f"CREATE TABLE {quote(sample)} LIKE {quote(table)}".encode()
        yield line, stmt[: m.start(2)] + sample.encode() + stmt[m.end(2) :]

    def _head(
        self, d: _Database, verb: bytes, table: str, listed: bytes
    ) -> tuple[bytes, bytes, tuple[bytes, bytes] | None]:
        """`INSERT INTO t (cols) WITH _phx_rows(cols) AS (` and `) SELECT … FROM _phx_rows t`,
        and the capture statement's head and tail (None: nothing to capture)."""
        if (verb, table, listed) not in d.heads:
            eng = self._engine
            assert eng is not None, "Inline.open() first"
            eng.conn.select_db(d.name)
            d.schema[table] = schema(eng.conn)[table]  # created by the restore just now
            eng.schema = d.schema  # the engine's SQL for this database's table
            cols = [c.decode().replace("``", "`") for c in _COLUMN.findall(listed)] or list(d.schema[table])
            names = ", ".join("`" + c.replace("`", "``") + "`" for c in cols)
            select = eng.select_list(table, d.eligible[table], cols)
            capture = None
            if table in d.capture and all(c in cols for c in d.capture[table]):
                captured = ", ".join(f"{quote(c)}" for c in d.capture[table] + self._keys(d, verb, table, cols))
                capture = (
                    f"INSERT INTO {quote(capture_table(table))} ({captured}) WITH _phx_rows({names}) AS (".encode(),
                    f") SELECT {captured} FROM _phx_rows".encode(),
                )
            d.heads[(verb, table, listed)] = (
                verb + f" INTO {quote(table)} ({names}) WITH _phx_rows({names}) AS (".encode(),
                f") SELECT {select} FROM _phx_rows t".encode(),
                capture,
            )
        return d.heads[(verb, table, listed)]

    def _keys(self, d: _Database, verb: bytes, table: str, cols: list[str]) -> list[str]:
        """The primary-key columns this INSERT's capture holds, for the dictionary to join it
        to the table's pseudonyms (_dictionary.py): none, and no join for the table, when the key
        is ruled (the table's key is a pseudonym) or an INSERT lacks it or may skip or
        replace rows (IGNORE, REPLACE: a capture row may then join another row)."""
        if table not in d.keys:
            assert self._engine is not None
            pk = primary_key(self._engine.conn, table)  # in d's database: _head selected it
            rules = d.rules.tables[table].columns
            d.keys[table] = [] if any(c in rules and rules[c].changes for c in pk) else pk
            if d.keys[table]:
                d.done.text_keys[table] = d.keys[table]
        if verb != b"INSERT" or not all(c in cols for c in d.keys[table]):
            d.done.text_keys.pop(table, None)
            return [c for c in d.keys[table] if c in cols]
        return d.keys[table]

    # -- used by the anonymize step -----------------------------------------------------------
    def drop_samples(self, database: str | None = None) -> None:
        """The originals' sample tables go as soon as the baseline has read them."""
        d = self.dbs.get(database) if database else self._main()
        if d is None:
            return
        conn = connect(self.admin, d.name)
        try:
            with conn.cursor() as cur:
                for sample in sorted(d.samples):
                    cur.execute(f"DROP TABLE IF EXISTS {quote(sample)}")
        finally:
            conn.close()


def originals(samples: set[str]) -> dict[str, str]:
    """table -> the table holding a sample of its original rows."""
    prefix = sample_table("")
    return {s[len(prefix) :]: s for s in samples}
