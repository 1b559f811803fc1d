"""The phoenix cycle: re-breed the golden image from a fresh, anonymized copy of production."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from phoenix.config import get_settings
from phoenix.errors import CycleBusy, PhoenixError
from tasks import catalog, cycle
from tasks.cycle_slot import LIMIT_NAME, cycle_slot
from tasks.runtime.factory import open_runtime
from tasks.sources.restore import describe
from tasks.storage import open_storage


@contextlib.contextmanager
def _one_cycle(home: Path) -> Iterator[None]:
    """The host lock is crash-safe on this host; the Prefect limit covers other hosts/workers."""
    with catalog.cycle_lock(home) as free:
        if not free:
            raise CycleBusy("another breed cycle is running on this host; this one was not started — retry when it ends")
        with cycle_slot(home) as slot:
            if not slot:
                raise CycleBusy(f"another breed cycle holds the Prefect global concurrency limit {LIMIT_NAME!r}; "
                                "this one was not started — retry when it ends")
            yield


@flow(name="breed", description="Restore, anonymize, verify and publish a new golden generation.")
def breed(source: str | None = None, rules: str | None = None) -> dict:
    settings = get_settings()
    source = source or settings.source
    if not source:
        raise PhoenixError("no source: pass --source or set `source` in phoenix.toml (a dump, mydumper dir or mysql:// URL)")
    rules_path = str(rules or settings.rules_path)
    key = settings.anon_key_bytes()
    log = get_run_logger()
    with _one_cycle(settings.home_dir):
        with open_storage(settings) as storage, open_runtime(settings, storage) as runtime:
            stamp = catalog.utc_stamp()
            report = cycle.CycleReport(stamp=stamp, breeder=f"breeder-{stamp}", golden=f"golden-{stamp}",
                                       source=describe(source), rules=rules_path)
            report.removed += cycle.remove_leftovers(storage, runtime)
            try:
                _run_cycle(storage, runtime, settings, report, source, rules_path, key)
            except BaseException:
                log.error(f"cycle {stamp} failed; removing its breeder and unpublished golden, `latest` unchanged")
                with contextlib.suppress(Exception):  # the report of what ran, the failed gate's findings included
                    create_markdown_artifact(key="breed-report", markdown=report.to_markdown(),
                                             description=f"breed {stamp} (failed)")
                try:
                    catalog.remove_leftovers(storage, runtime)
                except Exception as exc:  # the cycle's own error is the one to report
                    log.error(f"cleanup after the failed cycle failed too ({exc}); "
                              "`phoenix reap` or the next cycle removes the leftovers")
                raise
            gens = catalog.generations(storage)
    create_markdown_artifact(key="breed-report", markdown=report.to_markdown(), description=f"breed {stamp}")
    create_table_artifact(key="generations", table=[g.as_dict() for g in gens], description="generations after the cycle")
    log.info(f"published {report.golden}")
    return {"golden": report.golden, "steps": report.steps, "rows": report.rows, "removed": report.removed,
            "forensic": report.forensic, "checksums": report.checksums}


def _run_cycle(storage, runtime, settings, report: cycle.CycleReport, source: str, rules_path: str, key: bytes) -> None:
    b, g, t = report.breeder, report.golden, cycle._timed
    with t(report, "create_breeder"):
        cycle.create_breeder(storage, settings, b)
    with t(report, "start_server"):
        cycle.start_server(runtime, b)
    with t(report, "restore"):
        inline = cycle.inline_anonymizer(runtime, b, settings.database, rules_path, key) \
            if settings.anonymize_inline else None
        restored = cycle.restore_source(runtime, b, source, settings.database, settings.restore_jobs, inline)
        report.source_bytes = restored.bytes_read
    with t(report, "anonymize"):
        rules, baseline = cycle.anonymize_breeder(runtime, b, settings.database, rules_path, key, report, inline)
    with t(report, "gate"):
        unscannable = cycle.gate(runtime, b, settings.database, rules, key, baseline, report)
    with t(report, "stop_server"):
        cycle.stop_server(runtime, b)
    with t(report, "seal"):
        cycle.seal(runtime, b)
    cycle.plant(storage, b, baseline)
    with t(report, "zero_free"):
        cycle.zero_free(storage, b)
    with t(report, "forensic_gate"):
        scanned = cycle.forensic_gate(storage, b, baseline, unscannable, report)
    with t(report, "snapshot_breeder"):
        cycle.snapshot_breeder(storage, b)
    with t(report, "clone_golden"):
        cycle.clone_golden(storage, b, g, scanned)
    with t(report, "publish"):
        cycle.publish(storage, g)
    report.sizes = {g: storage.usage(g), b: storage.usage(b)}
    with t(report, "remove_breeder"):
        cycle.remove_breeder(storage, runtime, b)
    with t(report, "retire"):
        report.removed += cycle.retire(storage, settings.keep_generations)
