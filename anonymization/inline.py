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
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from anonymization.engine import Engine, Inlined, connect, schema, set_based
from anonymization.rules import Rules
from phoenix.db import AdminAccess

SAMPLE_EVERY = 16
_INSERT = re.compile(rb"^((?:INSERT|REPLACE)(?: IGNORE)?) INTO `((?:[^`]|``)+)`( \([^)]*\))? VALUES\s*")
_COLUMN = re.compile(rb"`((?:[^`]|``)+)`")

Statements = Iterator[tuple[int, bytes]]


def sample_table(table: str) -> str:
    return f"_phx_orig_{table}"


class Inline:
    """The restore-side half of the anonymization of one breeder database."""

    def __init__(self, admin: AdminAccess, database: str, rules: Rules, key: bytes) -> None:
        self.admin, self.database, self.rules, self.key = admin, database, rules, key
        self.eligible = {t: cols for t, r in rules.tables.items()
                         if not r.truncate and not r.delete_where and (cols := set_based(r))}
        self.done = Inlined()
        self.samples: set[str] = set()
        self._engine: Engine | None = None
        self._heads: dict[tuple[bytes, str, bytes], tuple[bytes, bytes]] = {}
        self._count: dict[str, int] = {}

    # -- used by the restore ------------------------------------------------------------------
    def open(self) -> list[tuple[str, tuple]]:
        """Start (one connection, the dictionaries); the session statements every restore
        connection runs first: the family keys' pads, as parameters (never in a statement)."""
        if self._engine is None:
            self._engine = Engine([connect(self.admin, self.database)], self.rules, self.key, check=False)
            self._engine.prepare()
        return self._engine.pad_statements()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.conn.close()
            self._engine = None

    def keys_held(self, keys: dict[str, list[str]]) -> None:
        """The key definitions the restore held back: the engine adds them after."""
        self.done.keys = keys

    def holds(self, table: str) -> bool:
        """Whether the restore leaves this table's keys to the engine."""
        return table in self.done.tables

    def wrap(self, stmts: Statements) -> Statements:
        for line, stmt in stmts:
            m = _INSERT.match(stmt)
            table = m.group(2).decode().replace("``", "`") if m else None
            if table not in self.eligible:
                yield line, stmt
                continue
            n = self._count[table] = self._count.get(table, 0) + 1
            if n % SAMPLE_EVERY == 1 or SAMPLE_EVERY == 1:
                yield from self._sample(line, stmt, table, m)
            head, tail = self._head(m.group(1), table, m.group(3) or b"")
            self.done.tables.add(table)
            yield line, head + b"VALUES " + stmt[m.end():] + tail

    def _sample(self, line: int, stmt: bytes, table: str, m: re.Match) -> Statements:
        sample = sample_table(table)
        if sample not in self.samples:
            self.samples.add(sample)
            yield line, f"CREATE TABLE `{sample}` LIKE `{table}`".encode()
        yield line, stmt[:m.start(2)] + sample.encode() + stmt[m.end(2):]

    def _head(self, verb: bytes, table: str, listed: bytes) -> tuple[bytes, bytes]:
        """`INSERT INTO t (cols) WITH _phx_rows(cols) AS (` and `) SELECT … FROM _phx_rows t`."""
        if (verb, table, listed) not in self._heads:
            eng = self._engine
            assert eng is not None, "Inline.open() first"
            eng.schema[table] = schema(eng.conn)[table]  # created by the restore just now
            cols = [c.decode().replace("``", "`") for c in _COLUMN.findall(listed)] or list(eng.schema[table])
            names = ", ".join("`" + c.replace("`", "``") + "`" for c in cols)
            select = eng.select_list(table, self.eligible[table], cols)
            self._heads[(verb, table, listed)] = (
                verb + f" INTO `{table}` ({names}) WITH _phx_rows({names}) AS (".encode(),
                f") SELECT {select} FROM _phx_rows t".encode())
        return self._heads[(verb, table, listed)]

    # -- used by the anonymize step -----------------------------------------------------------
    def drop_samples(self) -> None:
        """The originals' sample tables go as soon as the baseline has read them."""
        conn = connect(self.admin, self.database)
        try:
            with conn.cursor() as cur:
                for sample in sorted(self.samples):
                    cur.execute(f"DROP TABLE IF EXISTS `{sample}`")
        finally:
            conn.close()


def originals(samples: set[str]) -> dict[str, str]:
    """table -> the table holding a sample of its original rows."""
    prefix = sample_table("")
    return {s[len(prefix):]: s for s in samples}

