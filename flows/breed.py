"""The phoenix cycle: re-breed the golden image from a fresh, anonymized copy of production."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows._common import tag_run
from phoenix.config import get_settings
from phoenix.errors import ConfigError, CycleBusy
from tasks import catalog, cycle
from tasks.cycle_slot import LIMIT_NAME, cycle_slot
from tasks.runtime.factory import open_runtime
from tasks.sources.restore import check_source
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


def _run_name() -> str:
    return f"breed/golden-{catalog.utc_stamp()}"


def _stamp(storage) -> str:
    """The stamp in this run's name (so the UI's `breed/golden-<stamp>` is the golden it makes),
    unless a golden or breeder of that stamp exists already (a re-run): then a fresh one."""
    from prefect.runtime import flow_run

    name = flow_run.get_name() or ""
    stamp = name.removeprefix("breed/golden-") if name.startswith("breed/golden-") else catalog.utc_stamp()
    if storage.exists(f"golden-{stamp}") or storage.exists(f"breeder-{stamp}"):
        stamp = catalog.utc_stamp()
    return stamp


@flow(name="breed", description="Restore, anonymize, verify and publish a new golden generation.",
      flow_run_name=_run_name)
def breed(source: str | None = None, rules: str | None = None,
          mode: Literal["auto", "full", "incremental"] = "auto") -> dict:
    """Args:
        source: A dump (`.sql`, `.sql.gz`, `.sql.zst`), a mydumper directory or `mysql://user@host/db`;
            empty: the configured `source`.
        rules: The anonymization rules file (YAML); empty: the configured `rules`.
        mode: `incremental` applies a live source's changes since the last golden to a clone of it;
            `full` restores the whole source; `auto` is incremental where it can be, else full (the
            report says why).
    """
    tag_run()
    settings = get_settings()
    source = source or settings.source
    if not source:
        raise ConfigError("no source: set the `source` parameter (Prefect UI), pass --source (CLI) or set `source` "
                          "in phoenix.toml — a dump, a mydumper directory or a mysql:// URL")
    check_source(source)  # not a dump at all: exit 2 now, before a breeder exists
    rules_path = str(rules or settings.rules_path)
    cycle.check_rules(source, rules_path, settings.database)  # a rule for a database the dump lacks: exit 2 now
    key = settings.anon_key_bytes()
    log = get_run_logger()
    with _one_cycle(settings.home_dir):
        with open_storage(settings) as storage, open_runtime(settings, storage) as runtime:
            c = cycle.Cycle(storage, runtime, settings, _stamp(storage), source, rules_path, key)
            tag_run(f"generation:{c.golden}")
            removed = cycle.remove_leftovers(storage, runtime)
            try:
                cycle.breed(c, mode)
            except BaseException as exc:
                log.error(f"cycle {c.stamp} failed; removing its breeder and unpublished golden, `latest` unchanged")
                with contextlib.suppress(Exception):  # the report of what ran, the failed gate's findings included
                    create_markdown_artifact(key="breed-report", markdown=cycle.report(c, exc, removed).to_markdown(),
                                             description=f"breed {c.stamp} (failed)")
                try:
                    catalog.remove_leftovers(storage, runtime)
                except Exception as cleanup:  # the cycle's own error is the one to report
                    log.error(f"cleanup after the failed cycle failed too ({cleanup}); "
                              "`phoenix reap` or the next cycle removes the leftovers")
                raise
            gens = catalog.generations(storage)
    report = cycle.report(c, removed=removed)
    create_markdown_artifact(key="breed-report", markdown=report.to_markdown(), description=f"breed {c.stamp}")
    create_table_artifact(key="generations", table=[g.as_dict() for g in gens], description="generations after the cycle")
    log.info(f"published {report.golden}")
    return {"golden": report.golden, "steps": report.steps, "rows": report.rows, "removed": report.removed,
            "forensic": report.forensic, "checksums": report.checksums, "databases": report.databases,
            "skipped": report.skipped, "mode": report.mode, "reason": report.reason, "applied": report.applied,
            "positions": report.positions, "lag": round(report.lag, 1)}
