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
import json
import os
import socket
import time
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from phoenix.db import database_errors
from phoenix.errors import ForensicFailed
from tasks import catalog
from tasks.catalog import BREEDER, BREEDING, GOLDEN, PUBLISHED
from tasks.cycle._anonymize import Anonymized, Gated, anonymize_breeder, gate
from tasks.cycle._faults import skipped
from tasks.runtime.base import Runtime
from tasks.schema import BASE_SNAPSHOT, BREEDER_SNAPSHOT, Meta
from tasks.sources.restore import RestoreReport, describe, restore
from tasks.storage import Storage

META_CREATED, META_FORENSIC, META_KIND, META_STATE = Meta.CREATED, Meta.FORENSIC, Meta.KIND, Meta.STATE
_step = functools.partial(task, cache_policy=NONE, persist_result=False)
__all__ = ["Anonymized", "Gated", "anonymize_breeder", "gate"]  # steps 3 and 4, per database (_anonymize.py)


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

    log.info(f"restoring {describe(source)} (into database {database!r} unless the dump names its own)")
    with database_errors("restore"):
        report = restore(source, runtime.admin(name), database, progress, jobs=jobs, inline=inline)
    log.info(f"restored database(s) {', '.join(report.databases)}"
             + (f"; system schemas skipped: {', '.join(report.skipped)}" if report.skipped else ""))
    for db in report.databases if inline is not None else []:
        done = inline.done_in(db)
        if done is not None and done.tables:
            log.info(f"anonymized on the way in ({db}): {', '.join(sorted(done.tables))}")
    return report


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
def forensic_gate(storage: Storage, name: str, baseline, unscannable: list[str], home: str, base: str | None = None):
    """Every byte of the stopped breeder searched for the sampled originals; ForensicFailed
    (exit 4) if any is there, carrying the result for the failed cycle's report. Originals that
    MariaDB's own freshly installed files hold too (its help text names people) are not searched.
    `base`: the published golden an incremental breeder was cloned from — a match whose bytes
    are the same there, at the same place, came with that verified golden (a pseudonym the
    scrub wrote that equals a changed row's original name), not from this cycle."""
    from anonymization.forensic import scan
    from tasks.runtime.mariadb import pristine

    shipped = baseline.needles.discard_found_in(_files(pristine(Path(home) / "cache") / "mysql"))
    if shipped:
        get_run_logger().info(f"{shipped} sampled original(s) also occur in MariaDB's own installed files "
                              "(its help tables): not searched for in the image's bytes; the SQL gate checked them")
    result = scan(storage.extents(name), baseline.needles, target=name)
    if base is not None:
        result.findings = [f for f in result.findings if not _inherited(storage, name, base, f)]
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


def _inherited(storage: Storage, name: str, base: str, f) -> bool:
    here = storage.read(name, None, f.place, f.offset, f.size)
    return bool(f.size) and len(here) == f.size and storage.read(base, BASE_SNAPSHOT, f.place, f.offset, f.size) == here


def _files(root: Path):
    from tasks.storage.base import Extent

    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield Extent(str(path.relative_to(root)), 0, path.read_bytes())


@_step(name="6 snapshot + protect breeder")
def snapshot_breeder(storage: Storage, name: str) -> None:
    if BREEDER_SNAPSHOT not in storage.snapshots(name):
        storage.snapshot(name, BREEDER_SNAPSHOT)
    storage.protect(name, BREEDER_SNAPSHOT)


@_step(name="7 clone + flatten golden")
def clone_golden(storage: Storage, breeder: str, golden: str, scanned: int, databases: list[str], source: str,
                 position: str | None, recipe: str) -> None:
    """`position`: where in a live source's binary log this copy stands (the next incremental
    cycle starts there); `recipe`: what its pseudonyms follow from (_incremental.recipe)."""
    if not storage.exists(golden):
        storage.clone(breeder, BREEDER_SNAPSHOT, golden)
    storage.set_meta(golden, Meta.DATABASES, json.dumps(databases))
    storage.set_meta(golden, Meta.SOURCE, source)
    storage.set_meta(golden, Meta.RECIPE, recipe)
    if position:
        storage.set_meta(golden, Meta.POSITION, position)
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
