"""The steps of the phoenix cycle, one Prefect task each; `tasks/cycle/__init__.py` orders them.

Every step is idempotent and every name it creates is recorded in storage metadata,
so a cycle killed at any line leaves only things the next cycle (or the reaper) can
recognise and remove — and `latest` is derived from published goldens only, so it
never moves until the publish step's single metadata write. Steps return what they
learned; the flow builds the report. None is cached or its result persisted
(`_step`): their inputs are live handles, and the baseline holds originals in memory.
"""

from __future__ import annotations

import functools
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from phoenix.db import connect, database_errors, quote
from phoenix.errors import ForensicFailed, GateFailed
from tasks import catalog
from tasks.catalog import BREEDER, BREEDING, GOLDEN, PUBLISHED
from tasks.cycle._faults import skipped
from tasks.runtime.base import Runtime
from tasks.schema import BASE_SNAPSHOT, BREEDER_SNAPSHOT, Meta
from tasks.sources.restore import RestoreReport, describe, restore
from tasks.storage import Storage

META_CREATED, META_FORENSIC, META_KIND, META_STATE = Meta.CREATED, Meta.FORENSIC, Meta.KIND, Meta.STATE
_step = functools.partial(task, cache_policy=NONE, persist_result=False)


@dataclass
class Anonymized:
    rules: Any
    baseline: Any  # anonymization.Baseline: its needles are originals, in memory only
    markdown: str
    rows: dict[str, int]


@dataclass
class Gated:
    markdown: str
    checksums: dict[str, int]  # what a clone must serve unchanged after the seal
    unscannable: list[str]  # tables the forensic gate could not read (it fails on them by name)


@_step(name="1 create breeder image")
def create_breeder(storage: Storage, name: str, size_bytes: int) -> None:
    storage.create(name, size_bytes)
    storage.set_meta(name, META_KIND, BREEDER)
    storage.set_meta(name, META_CREATED, catalog.utc_iso())
    storage.set_meta(name, Meta.OWNER, f"{socket.gethostname()}:{os.getpid()}")


@_step(name="2a start breeder server")
def start_server(runtime: Runtime, name: str) -> None:
    runtime.start(name, name, profile="restore", labels={"phoenix.io/role": "breeder"})
    runtime.wait_ready(name, timeout=300)


def inline_anonymizer(runtime: Runtime, name: str, database: str, rules_path: str, key: bytes):
    """The restore-side half of the anonymization (anonymization/inline.py)."""
    from anonymization import load_rules
    from anonymization.inline import Inline

    return Inline(runtime.admin(name), database, load_rules(rules_path), key)


@_step(name="2b restore source")
def restore_source(runtime: Runtime, name: str, source: str, database: str, jobs: int = 1,
                   inline=None) -> RestoreReport:
    log = get_run_logger()
    last = [0.0]

    def progress(done: int, total: int | None, rate: float, eta: float | None) -> None:
        if time.monotonic() - last[0] >= 5 or (total and done >= total):
            last[0] = time.monotonic()
            pct = f"{100 * done / total:.0f}% " if total else ""
            log.info(f"restore {pct}{done / 1e6:,.0f} MB at {rate / 1e6:,.1f} MB/s"
                     + (f", ETA {eta:.0f}s" if eta is not None else ""))

    log.info(f"restoring {describe(source)} into database {database!r}")
    with database_errors("restore"):
        report = restore(source, runtime.admin(name), database, progress, jobs=jobs, inline=inline)
    if inline is not None and inline.done.tables:
        log.info(f"anonymized on the way in: {', '.join(sorted(inline.done.tables))}")
    return report


@_step(name="3 anonymize")
def anonymize_breeder(runtime: Runtime, name: str, database: str, rules_path: str, key: bytes,
                      inline=None) -> Anonymized:
    from anonymization import anonymize, load_rules, take_baseline
    from anonymization.inline import originals

    log = get_run_logger()
    rules = load_rules(rules_path)
    admin = runtime.admin(name)
    baseline = None

    def take() -> None:  # before any rewrite, beside the held-key builds
        nonlocal baseline
        baseline = take_baseline(admin, database, rules, key, originals(inline.samples) if inline else None)
        if inline is not None:
            inline.drop_samples()

    with database_errors("anonymize"):
        result = anonymize(admin, database, rules, key, inlined=inline.done if inline else None, before=take,
                           progress=lambda table, done, total: log.info(f"anonymize {table}: {done:,}/{total:,} rows"))
    if baseline is not None:  # pseudonyms the scrub wrote into texts are not surviving originals
        baseline.exclude(getattr(result, "written", set()))
    return Anonymized(rules, baseline, result.to_markdown(), dict(getattr(result, "rows", {}) or {}))


@_step(name="4 GDPR gate")
def gate(runtime: Runtime, name: str, database: str, rules, key: bytes, baseline) -> Gated:
    """The SQL gate (GateFailed, exit 4, with its findings); then what the next steps need."""
    from anonymization import run_gate
    from anonymization.forensic import unscannable_tables

    admin = runtime.admin(name)
    with database_errors("GDPR gate"):
        result = run_gate(admin, database, rules, key, baseline)
    try:
        result.raise_if_failed()
    except GateFailed as exc:
        exc.markdown = result.to_markdown()  # type: ignore[attr-defined]  # for the failed cycle's report
        raise
    conn = connect(admin, database)
    try:
        return Gated(result.to_markdown(), _checksums(conn), unscannable_tables(conn, [database]))
    finally:
        conn.close()


def _checksums(conn) -> dict[str, int]:
    with conn.cursor() as cur:
        cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                    "AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1")
        tables = [t for (t,) in cur.fetchall()]
        if not tables:
            return {}
        cur.execute("CHECKSUM TABLE " + ", ".join(quote(t) for t in tables))
        return {t.split(".", 1)[1]: int(c or 0) for t, c in cur.fetchall()}


@_step(name="5 slow shutdown")
def stop_server(runtime: Runtime, name: str) -> None:
    runtime.stop(name)


@_step(name="5a seal: fresh redo log, no temporary files")
def seal(runtime: Runtime, name: str) -> None:
    if not skipped("seal"):  # fault injection only
        runtime.seal(name)
    runtime.remove(name)  # forget the process and detach the image before the byte scan


@_step(name="5b zero the filesystem's free blocks")
def zero_free(storage: Storage, name: str) -> None:
    if not skipped("zero_free"):  # fault injection only
        storage.zero_free(name)


@_step(name="5c forensic gate: every byte of the breeder")
def forensic_gate(storage: Storage, name: str, baseline, unscannable: list[str]):
    """Every byte of the stopped breeder searched for the sampled originals; ForensicFailed
    (exit 4) if any is there, carrying the result for the failed cycle's report."""
    from anonymization.forensic import scan

    result = scan(storage.extents(name), baseline.needles, target=name)
    result.unscannable = list(unscannable)
    get_run_logger().info(
        f"forensic gate {'passed' if result.passed else 'FAILED'}: {result.bytes_scanned / 1e6:,.0f} MB in "
        f"{result.seconds:.1f} s ({result.mb_per_s:,.0f} MB/s), {result.values:,} originals searched")
    try:
        result.raise_if_failed()
    except ForensicFailed as exc:
        exc.result = result  # type: ignore[attr-defined]
        raise
    return result


@_step(name="6 snapshot + protect breeder")
def snapshot_breeder(storage: Storage, name: str) -> None:
    if BREEDER_SNAPSHOT not in storage.snapshots(name):
        storage.snapshot(name, BREEDER_SNAPSHOT)
    storage.protect(name, BREEDER_SNAPSHOT)


@_step(name="7 clone + flatten golden")
def clone_golden(storage: Storage, breeder: str, golden: str, scanned: int) -> None:
    if not storage.exists(golden):
        storage.clone(breeder, BREEDER_SNAPSHOT, golden)
    storage.set_meta(golden, META_KIND, GOLDEN)
    storage.set_meta(golden, META_STATE, BREEDING)
    storage.set_meta(golden, META_CREATED, catalog.utc_iso())
    storage.set_meta(golden, META_FORENSIC, f"passed {catalog.utc_iso()} {scanned}")
    storage.flatten(golden)


@_step(name="8 snapshot + protect + publish golden")
def publish(storage: Storage, golden: str, breeder: str) -> dict[str, int]:
    """Returns the sizes of the golden and the breeder it came from."""
    if BASE_SNAPSHOT not in storage.snapshots(golden):
        storage.snapshot(golden, BASE_SNAPSHOT)
    storage.protect(golden, BASE_SNAPSHOT)
    storage.set_meta(golden, META_STATE, PUBLISHED)  # the atomic publish: `latest` moves here
    return {golden: storage.usage(golden), breeder: storage.usage(breeder)}


@_step(name="9 unprotect + delete breeder")
def remove_breeder(storage: Storage, runtime: Runtime, breeder: str) -> None:
    runtime.remove(breeder)
    catalog.remove_generation(storage, breeder)


@_step(name="10 retire old generations")
def retire(storage: Storage, keep: int) -> list[str]:
    return catalog.retire(storage, keep)


@_step(name="0 remove leftovers of killed cycles")
def remove_leftovers(storage: Storage, runtime: Runtime) -> list[str]:
    return catalog.remove_leftovers(storage, runtime)
