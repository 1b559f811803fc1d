"""The incremental cycle's own steps (DESIGN.md): the breeder is a clone of the last golden,
and the source's changes since the position that golden recorded are applied to it,
anonymized on the way in (anonymization/incremental.py). The gate and every later step
are the full cycle's.

`choose` decides before anything is created: `auto` breeds incrementally when the last
golden came from this live source with a position its binary logs still reach, else in
full, and says why; `incremental` fails instead (IncrementalUnsupported).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import json
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from phoenix.config import get_settings
from phoenix.db import database_errors
from phoenix.errors import IncrementalUnsupported
from phoenix.proc import die_at
from tasks import catalog
from tasks.catalog import BREEDER
from tasks.cycle._anonymize import Anonymized, Baselines
from tasks.runtime.base import Runtime
from tasks.schema import BASE_SNAPSHOT, Meta
from tasks.sources import live
from tasks.storage import Storage

_step = functools.partial(task, cache_policy=NONE, persist_result=False)  # as in _steps.py
COMMIT_ROWS = 5000  # source transactions are applied whole, several to one commit


@dataclass
class Plan:
    """What `choose` decided: the mode, why, and for an incremental cycle where it starts."""

    mode: str  # "full" | "incremental"
    reason: str
    base: str | None = None  # the golden the breeder is cloned from
    databases: list[str] = field(default_factory=list)
    start: str | None = None  # live.Position JSON
    end: str | None = None
    observed: float = 0.0  # when `end` was the source's position (time.time())


def recipe(rules_path: str, key: bytes) -> str:
    """What a golden's pseudonyms follow from — the rules file and the key — as a keyed digest
    (it reveals neither): an incremental cycle on a golden made with others would mix two
    anonymizations."""
    from anonymization.keyed import derive

    return hmac.new(derive(key, "recipe"), Path(rules_path).read_bytes(), hashlib.sha256).hexdigest()[:32]


def choose(storage: Storage, source: str, mode: str, recipe: str) -> Plan:
    if mode == "full":
        return Plan("full", "mode=full")
    why, plan = _incremental_plan(storage, source, recipe)
    if plan is not None:
        return plan
    if mode == "incremental":
        raise IncrementalUnsupported(f"no incremental cycle: {why}; run with mode=full (or auto)")
    return Plan("full", why)


def _incremental_plan(storage: Storage, source: str, recipe: str) -> tuple[str, Plan | None]:
    if not live.is_live(source):
        return "the source is a dump, not a live server with a binary log", None
    base = catalog.latest(storage)
    if base is None:
        return "no published golden to start from", None
    start = live.Position.from_json(storage.get_meta(base, Meta.POSITION))
    if start is None or storage.get_meta(base, Meta.SOURCE) != live.describe(source):
        return f"the last golden {base} recorded no binary-log position of this source", None
    if storage.get_meta(base, Meta.RECIPE) != recipe:
        return f"the rules or the key changed since the last golden {base}", None
    src = live.parse(source)
    try:
        with contextlib.closing(src.connect()) as conn:
            if why := live.not_ready(conn):
                return why, None
            if not live.reaches(conn, start):
                return f"the source's binary logs no longer reach {start} (purged)", None
            end = live.current(conn)
    except Exception as exc:  # pymysql's errors name the host, never a value
        return f"the source cannot be read ({type(exc).__name__}: {str(exc)[:120]})", None
    databases = json.loads(storage.get_meta(base, Meta.DATABASES) or "[]") or [src.database]
    return "", Plan("incremental", f"changes since {start}", base, databases, start.to_json(), end.to_json(),
                    time.time())


@_step(name="1 clone the last golden to the breeder")
def clone_breeder(storage: Storage, base: str, name: str) -> None:
    if not storage.exists(name):
        storage.clone(base, BASE_SNAPSHOT, name)
    storage.set_meta(name, Meta.KIND, BREEDER)
    storage.set_meta(name, Meta.CREATED, catalog.utc_iso())
    storage.set_meta(name, Meta.OWNER, f"{socket.gethostname()}:{os.getpid()}")


@dataclass
class Changed(Anonymized):
    """The apply's result: the anonymize step's, and the rows it applied per table and kind."""

    applied: dict[str, dict[str, int]] = field(default_factory=dict)
    transactions: int = 0
    seconds: float = 0.0


@_step(name="2b apply the source's changes, anonymized")
def apply_changes(runtime: Runtime, name: str, source: str, databases: list[str], rules_path: str, key: bytes,
                  start: str, end: str) -> Changed:
    from anonymization import load_rules
    from anonymization.incremental import Applier
    from tasks.sources._binlog_apart import transactions

    log = get_run_logger()
    rules = load_rules(rules_path).split(databases)
    first, last = live.Position.from_json(start), live.Position.from_json(end)
    assert first is not None and last is not None
    src = live.parse(source)
    into = {src.database: databases[0]}  # the source's database is restored under the configured name
    t0, n, pending = time.monotonic(), 0, 0
    raw = "apply_rules" in get_settings().fault_skip.split(",")  # fault injection only
    with database_errors("apply"), Applier(runtime.admin(name), rules, key, raw=raw) as applier:
        for txn in transactions(src, first, last, set(into)):
            for ch in txn.changes:
                applier.apply(into[ch.database], ch.table, ch.kind, ch.rows)
                pending += len(ch.rows)
            n += 1
            if pending >= COMMIT_ROWS:
                applier.commit()
                die_at("apply:commit", get_settings().fault_kill_after)  # fault injection only
                pending = 0
                log.info(f"applied {n:,} transactions up to {txn.end}")
        applier.commit()
        seconds = time.monotonic() - t0
        total = sum(sum(k.values()) for k in applier.done.rows.values())
        log.info(f"applied {n:,} transactions, {total:,} rows, {first} → {last} in {seconds:.1f} s")
        baselines = _baselines(runtime, name, rules, key, applier)
        applier.drop_staged()
    md = _markdown(applier.done.rows, n, first, last, seconds)
    rows = {t: sum(k.values()) for t, k in applier.done.rows.items()}
    return Changed(rules, baselines, md, rows, applier.done.rows, n, seconds)


def _baselines(runtime: Runtime, name: str, rules: dict, key: bytes, applier) -> Baselines:
    """The gate's baseline from the changed rows' originals (staged by the applier); a ruled
    table with no change gets an empty stage, so nothing of the copy is taken for an original."""
    from anonymization import take_baseline
    from anonymization.forensic import Needles
    from anonymization.inline import sample_table

    admin = runtime.admin(name)
    out = Baselines(needles=Needles())
    for db, db_rules in rules.items():
        for t in db_rules.tables:
            if t in applier.engines[db].schema:
                applier.stage_empty(db, t)
        originals = {t: sample_table(t) for t in applier.done.staged[db]}
        # No counts or orphans: nothing changes between this baseline and the gate, and the
        # apply checked foreign keys row by row (counting whole tables grew with the database).
        out.per[db] = take_baseline(admin, db, db_rules, key, originals, integrity=False)
        out.per[db].scope = applier.scope(db)  # the rest of the copy is the verified golden's
        out.needles.update(out.per[db].needles)
    return out


def _markdown(rows: dict[str, dict[str, int]], n: int, first, last, seconds: float) -> str:
    lines = ["## Incremental apply", "", f"{n:,} transactions from `{first}` to `{last}` in {seconds:.1f} s.", "",
             "| table | inserted | updated | deleted |", "|---|---:|---:|---:|"]
    lines += [f"| {t} | {k['insert']:,} | {k['update']:,} | {k['delete']:,} |" for t, k in sorted(rows.items())]
    return "\n".join(lines)
