"""Cycle steps 3 and 4, the anonymization and the SQL gate, over every database the
restore filled: the configured `database`, or each one the dump names. The rules are
split per database first (`Rules.split`): a database they name that the dump does not
hold is a RulesError (exit 2) before any table is touched. Each database gets its own
baseline, engine run and gate; the forensic gate searches for all their originals at once.
"""

from __future__ import annotations

import functools
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from phoenix.db import connect, database_errors
from phoenix.errors import GateFailed
from tasks.runtime.base import Runtime

_step = functools.partial(task, cache_policy=NONE, persist_result=False)  # as in _steps.py


@dataclass
class Baselines:
    """The gate's baseline of each database; `needles`: all their originals, for the byte scan."""

    per: dict[str, Any] = field(default_factory=dict)  # database -> anonymization.Baseline
    needles: Any = None  # anonymization.forensic.Needles, in memory only


@dataclass
class Anonymized:
    rules: dict[str, Any]  # database -> anonymization.Rules
    baseline: Baselines
    markdown: str
    rows: dict[str, int]  # table (`db.table` when there are several databases) -> rows


@dataclass
class Gated:
    markdown: str
    checksums: dict[str, int]  # what a clone must serve unchanged after the seal
    unscannable: list[str]  # tables the forensic gate could not read (it fails on them by name)


def _named(databases: list[str], db: str, table: str) -> str:
    return table if len(databases) == 1 else f"{db}.{table}"


@_step(name="3 anonymize")
def anonymize_breeder(runtime: Runtime, name: str, databases: list[str], rules_path: str, key: bytes,
                      inline=None) -> Anonymized:
    from anonymization import anonymize, load_rules, take_baseline
    from anonymization.forensic import Needles
    from anonymization.inline import originals

    log = get_run_logger()
    loaded = load_rules(rules_path)
    rules = loaded.split(databases)  # RulesError before anything changes
    # The inline restore's engine drew from the dictionaries of all databases' rules.
    drawn = [loaded.everything()] if inline is not None else []
    admin = runtime.admin(name)
    baselines = Baselines()
    written: set[str] = set()
    parts, rows = [], {}
    for db, db_rules in rules.items():
        def take(db=db, db_rules=db_rules) -> None:  # before any rewrite, beside the held-key builds
            samples = inline.samples_in(db) if inline else set()
            baselines.per[db] = take_baseline(
                admin, db, db_rules, key, originals(samples) if samples else None, drawn=drawn
            )
            if inline is not None:
                inline.drop_samples(db)

        with database_errors("anonymize"):
            result = anonymize(admin, db, db_rules, key, inlined=inline.done_in(db) if inline else None, before=take,
                               progress=lambda table, done, total, db=db: log.info(
                                   f"anonymize {_named(databases, db, table)}: {done:,}/{total:,} rows"))
        written |= set(getattr(result, "written", set()))
        md = result.to_markdown()
        parts.append(md if len(databases) == 1 else md.replace("## Anonymization", f"## Anonymization of `{db}`", 1))
        rows.update({_named(databases, db, t): n for t, n in (getattr(result, "rows", {}) or {}).items()})
    # Pseudonyms the scrub wrote into texts (in any database) are not surviving originals.
    baselines.needles = Needles()
    for base in baselines.per.values():
        base.exclude(written)
        baselines.needles.update(base.needles)
    return Anonymized(rules, baselines, "\n\n".join(parts), rows)


@_step(name="4 GDPR gate")
def gate(runtime: Runtime, name: str, rules: dict, key: bytes, baselines: Baselines) -> Gated:
    """The SQL gate of every database (GateFailed, exit 4, with all their findings); then
    what the next steps need."""
    from anonymization import GateResult, run_gate
    from anonymization.forensic import unscannable_tables

    admin = runtime.admin(name)
    databases = list(rules)
    result = GateResult()
    t0 = time.monotonic()
    with database_errors("GDPR gate"), ThreadPoolExecutor(1) as pool:
        _flush_while_reading(admin)
        # The checksums read every table while the checks run (both mostly wait on the server).
        summing = pool.submit(_checksums, admin, databases)
        for db, db_rules in rules.items():
            one = run_gate(admin, db, db_rules, key, baselines.per.get(db))
            result.checked_values += one.checked_values
            result.findings += [f if len(databases) == 1 else f"{db}: {f}" for f in one.findings]
        checks = time.monotonic() - t0
        checksums = summing.result()
    try:
        result.raise_if_failed()
    except GateFailed as exc:
        exc.markdown = result.to_markdown()  # type: ignore[attr-defined]  # for the failed cycle's report
        raise
    with database_errors("GDPR gate"):
        conn = connect(admin, databases[0])
        try:
            unscannable = unscannable_tables(conn, databases)
        finally:
            conn.close()
    get_run_logger().info(f"GDPR gate passed in {time.monotonic() - t0:.1f} s (SQL checks {checks:.1f} s, "
                          f"table checksums alongside)")
    return Gated(result.to_markdown(), checksums, unscannable)


def _checksums(admin, databases: list[str]) -> dict[str, int]:
    from anonymization import table_checksums

    out: dict[str, int] = {}
    for db in databases:
        out.update({_named(databases, db, t): c for t, c in table_checksums(admin, db).items()})
    return out


def _flush_while_reading(admin) -> None:
    """The page cleaner writes every dirty page while the gate reads, instead of the slow
    shutdown after it: an incremental apply dirties pages all over the tables (1 GB, 53 k
    rows: stop 3.7 s; 20 k rows changed by hand: 2.0 s, 0.2 s with this). The default
    io_capacity (200 pages/s) would leave them to the shutdown."""
    conn = connect(admin, None)
    try:
        with conn.cursor() as cur:
            for var, value in (("innodb_io_capacity_max", 100000), ("innodb_io_capacity", 100000),
                               ("innodb_max_dirty_pages_pct", 0)):
                cur.execute(f"SET GLOBAL {var} = {value}")
    finally:
        conn.close()
