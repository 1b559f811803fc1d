"""The phoenix cycle, in the order of DESIGN.md: one ordered plan drives the flow, the step
timings and the fault-injection points (`STEPS` is its list of names).

Each entry calls one Prefect task (`_steps.py`) with plain values taken from the `Cycle`
(names, paths, numbers; the two handles); what the task returns is kept under the step's
name, and the report is built from those results (`report`), also for a failed cycle.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from phoenix.config import Settings, parse_size
from tasks.cycle import _incremental as inc
from tasks.cycle import _steps as s
from tasks.cycle._faults import checkpoint, plant
from tasks.cycle._incremental import Plan, choose
from tasks.cycle._read_ahead import read_ahead
from tasks.cycle._report import CycleReport
from tasks.cycle._steps import remove_leftovers
from tasks.runtime.base import Runtime
from tasks.schema import Meta
from tasks.sources.live import Position
from tasks.sources.restore import describe
from tasks.storage import Storage

__all__ = ["INCREMENTAL_PLAN", "PLAN", "STEPS", "Cycle", "CycleReport", "META_FORENSIC", "Plan", "breed",
           "check_rules", "choose", "remove_leftovers", "report", "run"]

META_FORENSIC = Meta.FORENSIC


@dataclass
class Cycle:
    """One cycle: its names and inputs, the two handles, and what each step returned."""

    storage: Storage
    runtime: Runtime
    settings: Settings
    stamp: str
    source: str
    rules_path: str
    key: bytes = field(repr=False)
    plan: Plan = field(default_factory=lambda: Plan("full", "mode=full"))
    results: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def breeder(self) -> str:
        return f"breeder-{self.stamp}"

    @property
    def golden(self) -> str:
        return f"golden-{self.stamp}"

    @property
    def database(self) -> str:
        """Where a dump that names no database is restored."""
        return self.settings.database

    @property
    def databases(self) -> list[str]:
        """What the restore filled (the dump's own databases, or [database]); incremental:
        the last golden's."""
        return list(self.results["restore"].databases) if "restore" in self.results else list(self.plan.databases)

    @functools.cached_property
    def recipe(self) -> str:
        """What this cycle's pseudonyms follow from (rules and key), read once."""
        return inc.recipe(self.rules_path, self.key)

    @property
    def anonymized(self):
        """Step 3's result: the anonymization (full) or the apply (incremental)."""
        return self.results.get("anonymize") or self.results["apply"]

    @property
    def position(self) -> str | None:
        """The source's binary-log position the new golden holds (none for a dump)."""
        if "apply" in self.results:
            return self.plan.end
        return getattr(self.results.get("restore"), "position", None)


def _restore(c: Cycle):
    inline = (s.inline_anonymizer(c.runtime, c.breeder, c.database, c.rules_path, c.key)
              if c.settings.anonymize_inline else None)
    c.results["inline"] = inline
    return s.restore_source(c.runtime, c.breeder, c.source, c.database, c.settings.restore_jobs, inline)


def check_rules(source: str, rules_path: str, database: str) -> list[str]:
    """Before a breeder exists: the rules parse, and fit the databases the source holds
    (a dump's own, found in one read of it, else `database`); RulesError (exit 2) if not.
    Returns those databases."""
    from pathlib import Path

    from anonymization import load_rules
    from tasks.sources._databases import named_in

    named = named_in(source) if Path(source).is_file() else None
    databases = named[0] if named else [database]
    load_rules(rules_path).split(databases)
    return databases


def _zero_free(c: Cycle) -> None:
    plant(c.storage, c.breeder, c.anonymized.baseline)  # fault injection only
    s.zero_free(c.storage, c.breeder)


def _apply(c: Cycle):
    with read_ahead(c.storage, c.breeder):  # the fresh clone's pages, in memory while the apply needs them
        return inc.apply_changes(c.runtime, c.breeder, c.source, c.databases, c.rules_path, c.key,
                                 c.plan.start, c.plan.end)


Step = tuple[str, Callable[[Cycle], Any]]
_CHECKED: tuple[Step, ...] = (  # steps 4-10: the same for both kinds of cycle
    ("gate", lambda c: s.gate(c.runtime, c.breeder, c.anonymized.rules, c.key, c.anonymized.baseline)),
    ("stop_server", lambda c: s.stop_server(c.runtime, c.breeder)),
    ("seal", lambda c: s.seal(c.runtime, c.breeder)),
    ("zero_free", _zero_free),
    ("forensic_gate", lambda c: s.forensic_gate(c.storage, c.breeder, c.anonymized.baseline,
                                                c.results["gate"].unscannable, str(c.settings.home_dir),
                                                c.plan.base if c.plan.mode == "incremental" else None)),
    ("snapshot_breeder", lambda c: s.snapshot_breeder(c.storage, c.breeder)),
    ("clone_golden", lambda c: s.clone_golden(c.storage, c.breeder, c.golden, c.results["forensic_gate"].bytes_scanned,
                                              c.databases, describe(c.source), c.position,
                                              c.recipe)),
    ("publish", lambda c: s.publish(c.storage, c.golden, c.breeder)),
    ("remove_breeder", lambda c: s.remove_breeder(c.storage, c.runtime, c.breeder)),
    ("retire", lambda c: s.retire(c.storage, c.settings.keep_generations)),
)
PLAN: tuple[Step, ...] = (
    ("create_breeder", lambda c: s.create_breeder(c.storage, c.breeder, parse_size(c.settings.image_size))),
    ("start_server", lambda c: s.start_server(c.runtime, c.breeder)),
    ("restore", _restore),
    ("anonymize", lambda c: s.anonymize_breeder(c.runtime, c.breeder, c.databases, c.rules_path, c.key,
                                                c.results["inline"])),
    *_CHECKED,
)
INCREMENTAL_PLAN: tuple[Step, ...] = (
    ("clone_breeder", lambda c: inc.clone_breeder(c.storage, c.plan.base, c.breeder)),
    ("start_server", lambda c: s.start_server(c.runtime, c.breeder)),
    ("apply", _apply),
    *_CHECKED,
)
STEPS = tuple(name for name, _ in PLAN)


def breed(c: Cycle, mode: str) -> None:
    """The cycle `mode` asks for (`choose`); in `auto`, an incremental cycle that meets what it
    cannot apply removes its breeder and breeds in full instead, the reason in the report."""
    from prefect import get_run_logger

    from phoenix.errors import IncrementalUnsupported
    from tasks import catalog

    c.plan = choose(c.storage, c.source, mode, c.recipe)
    log = get_run_logger()
    log.info(f"{c.plan.mode} cycle: {c.plan.reason}")
    try:
        run(c)
    except IncrementalUnsupported as exc:
        if mode != "auto" or c.plan.mode != "incremental":
            raise
        log.warning(f"the incremental cycle stopped ({exc}); breeding in full instead")
        c.runtime.remove(c.breeder)
        catalog.remove_generation(c.storage, c.breeder)
        c.results.clear()
        c.seconds.clear()
        c.plan = Plan("full", f"fell back from incremental: {exc}")
        run(c)


def run(c: Cycle) -> None:
    """Every step of the cycle's plan in order, timed; the fault-injection point after each."""
    for name, step in INCREMENTAL_PLAN if c.plan.mode == "incremental" else PLAN:
        t0 = time.monotonic()
        try:
            c.results[name] = step(c)
        finally:
            c.seconds[name] = time.monotonic() - t0
        checkpoint(name)


def report(c: Cycle, error: BaseException | None = None, removed: list[str] | None = None) -> CycleReport:
    """The cycle's report from what its steps returned (and, for a failed gate, its findings)."""
    r = c.results
    rep = CycleReport(stamp=c.stamp, breeder=c.breeder, golden=c.golden, source=describe(c.source),
                      rules=c.rules_path, steps=dict(c.seconds), removed=list(removed or []) + list(r.get("retire") or []))
    if "restore" in r:
        rep.source_bytes = r["restore"].bytes_read
        rep.databases, rep.skipped = list(r["restore"].databases), list(r["restore"].skipped)
        rep.notes = list(getattr(r["restore"], "notes", []))
    rep.mode, rep.reason = c.plan.mode, c.plan.reason
    if "apply" in r:
        rep.applied = r["apply"].applied
        rep.positions = [str(Position.from_json(p)) for p in (c.plan.start, c.plan.end)]
        rep.lag = time.time() - c.plan.observed  # how old the newest change in the golden is, at the report
    if "anonymize" in r or "apply" in r:
        rep.anonymize_md, rep.rows = c.anonymized.markdown, c.anonymized.rows
    if "gate" in r:
        rep.gate_md, rep.checksums = r["gate"].markdown, r["gate"].checksums
    elif error is not None and hasattr(error, "markdown"):
        rep.gate_md = error.markdown
    forensic = r.get("forensic_gate") or getattr(error, "result", None)
    if forensic is not None:
        rep.forensic_md, rep.forensic = forensic.to_markdown(), forensic.summary()
    rep.sizes = dict(r.get("publish") or {})
    return rep
