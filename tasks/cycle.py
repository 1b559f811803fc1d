"""The steps of the phoenix cycle, one Prefect task each, in the order of DESIGN.md.

Every step is idempotent and every name it creates is recorded in storage metadata,
so a cycle killed at any line leaves only things the next cycle (or the reaper) can
recognise and remove — and `latest` is derived from published goldens only, so it
never moves until step 8's single metadata write.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from dataclasses import dataclass, field

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from phoenix.config import Settings, parse_size
from tasks import catalog
from tasks.catalog import BREEDER, BREEDING, GOLDEN, PUBLISHED
from tasks.runtime.base import Runtime
from tasks.sources.restore import RestoreReport, describe, restore
from tasks.storage import BASE_SNAPSHOT, META_CREATED, META_KIND, META_STATE, Storage

BREEDER_SNAPSHOT = "golden"  # the breeder's snapshot the golden is cloned from
STEPS = ("create_breeder", "start_server", "restore", "anonymize", "gate", "stop_server", "seal",
         "zero_free", "forensic_gate", "snapshot_breeder", "clone_golden", "publish", "remove_breeder", "retire")
META_FORENSIC = "phoenix.forensic"  # "passed <ISO time> <bytes scanned>" once the forensic gate passed


@dataclass
class CycleReport:
    """What the breeder reports (the run's artifact). Never holds a secret or a value."""

    stamp: str
    breeder: str
    golden: str
    source: str
    steps: dict[str, float] = field(default_factory=dict)
    source_bytes: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    rules: str = ""
    anonymize_md: str = ""
    gate_md: str = ""
    forensic_md: str = ""
    forensic: dict = field(default_factory=dict)
    checksums: dict[str, int] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        lines = [f"# Breed {self.stamp}", "", f"- source: `{self.source}` ({self.source_bytes / 1e6:,.1f} MB)",
                 f"- golden: `{self.golden}`", f"- rules: `{self.rules}`", "", "| step | seconds |", "|---|---:|"]
        lines += [f"| {k} | {v:.2f} |" for k, v in self.steps.items()]
        lines += ["", f"| total | {sum(self.steps.values()):.2f} |", "", "## Rows", "", "| table | rows |", "|---|---:|"]
        lines += [f"| {t} | {n:,} |" for t, n in sorted(self.rows.items())]
        lines += ["", "## Image sizes", "", "| image | bytes |", "|---|---:|"]
        lines += [f"| {k} | {v:,} |" for k, v in self.sizes.items()]
        lines += ["", self.anonymize_md, "", self.gate_md, "", self.forensic_md]
        if self.removed:
            lines += ["", "Removed: " + ", ".join(f"`{r}`" for r in self.removed)]
        return "\n".join(lines)


def checkpoint(step: str) -> None:
    """Fault injection for the invariant tests: PHOENIX_FAULT_KILL_AFTER=<step> makes
    the cycle SIGKILL itself right after that step, exactly like a crashed worker."""
    if os.environ.get("PHOENIX_FAULT_KILL_AFTER") == step:
        os.kill(os.getpid(), signal.SIGKILL)


def skipped(step: str) -> bool:
    """Fault injection for the forensic gate's tests: PHOENIX_FAULT_SKIP=seal,zero_free
    leaves out a clean-up step, so the gate must find what it would have removed."""
    return step in os.environ.get("PHOENIX_FAULT_SKIP", "").split(",")


def _timed(report: CycleReport, step: str):
    class _T:
        def __enter__(self):
            self.t0 = time.monotonic()

        def __exit__(self, *exc):
            report.steps[step] = time.monotonic() - self.t0
            if exc[0] is None:
                checkpoint(step)

    return _T()


@task(name="1 create breeder image", cache_policy=NONE)
def create_breeder(storage: Storage, settings: Settings, name: str) -> None:

    storage.create(name, parse_size(settings.image_size))
    storage.set_meta(name, META_KIND, BREEDER)
    storage.set_meta(name, META_CREATED, catalog.utc_iso())
    storage.set_meta(name, "phoenix.owner", f"{socket.gethostname()}:{os.getpid()}")


@task(name="2a start breeder server", cache_policy=NONE)
def start_server(runtime: Runtime, name: str) -> None:
    runtime.start(name, name, profile="restore", labels={"phoenix.io/role": "breeder"})
    runtime.wait_ready(name, timeout=300)


def inline_anonymizer(runtime: Runtime, name: str, database: str, rules_path: str, key: bytes):
    """The restore-side half of the anonymization (anonymization/inline.py)."""
    from anonymization import load_rules
    from anonymization.inline import Inline

    return Inline(runtime.admin(name), database, load_rules(rules_path), key)


@task(name="2b restore source", cache_policy=NONE)
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
    report = restore(source, runtime.admin(name), database, progress, jobs=jobs, inline=inline)
    if inline is not None and inline.done.tables:
        log.info(f"anonymized on the way in: {', '.join(sorted(inline.done.tables))}")
    return report


@task(name="3 anonymize", cache_policy=NONE)
def anonymize_breeder(runtime: Runtime, name: str, database: str, rules_path: str, key: bytes, report: CycleReport,
                      inline=None):
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

    result = anonymize(admin, database, rules, key, inlined=inline.done if inline else None, before=take,
                       progress=lambda table, done, total: log.info(f"anonymize {table}: {done:,}/{total:,} rows"))
    report.anonymize_md = result.to_markdown()
    report.rows = dict(getattr(result, "rows", {}) or {})
    if baseline is not None:  # pseudonyms the scrub wrote into texts are not surviving originals
        baseline.exclude(getattr(result, "written", set()))
    return rules, baseline


@task(name="4 GDPR gate", cache_policy=NONE)
def gate(runtime: Runtime, name: str, database: str, rules, key: bytes, baseline, report: CycleReport) -> list[str]:
    """The SQL gate; returns the tables the forensic gate could not read (named there)."""
    from anonymization import run_gate
    from anonymization.engine import connect
    from anonymization.forensic import unscannable_tables

    admin = runtime.admin(name)
    result = run_gate(admin, database, rules, key, baseline)
    report.gate_md = result.to_markdown()
    result.raise_if_failed()
    conn = connect(admin, database)
    try:
        with conn.cursor() as cur:  # what a clone must serve unchanged after the seal
            cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                        "AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1")
            tables = [t for (t,) in cur.fetchall()]
            if tables:
                cur.execute("CHECKSUM TABLE " + ", ".join(f"`{t}`" for t in tables))
                report.checksums = {t.split(".", 1)[1]: int(c or 0) for t, c in cur.fetchall()}
        return unscannable_tables(conn, [database])
    finally:
        conn.close()


@task(name="5 slow shutdown", cache_policy=NONE)
def stop_server(runtime: Runtime, name: str) -> None:
    runtime.stop(name)


@task(name="5a seal: fresh redo log, no temporary files", cache_policy=NONE)
def seal(runtime: Runtime, name: str) -> None:
    if not skipped("seal"):
        runtime.seal(name)
    runtime.remove(name)  # forget the process and detach the image before the byte scan


@task(name="5b zero the filesystem's free blocks", cache_policy=NONE)
def zero_free(storage: Storage, name: str) -> None:
    if not skipped("zero_free"):
        storage.zero_free(name)


@task(name="5c forensic gate: every byte of the breeder", cache_policy=NONE)
def forensic_gate(storage: Storage, name: str, baseline, unscannable: list[str], report: CycleReport) -> int:
    """Fails the cycle (exit 4) if any sampled original is in any byte of the breeder."""
    from anonymization.forensic import scan

    result = scan(storage.extents(name), baseline.needles, target=name)
    result.unscannable = list(unscannable)
    get_run_logger().info(
        f"forensic gate {'passed' if result.passed else 'FAILED'}: {result.bytes_scanned / 1e6:,.0f} MB in "
        f"{result.seconds:.1f} s ({result.mb_per_s:,.0f} MB/s), {result.values:,} originals searched")
    report.forensic_md, report.forensic = result.to_markdown(), result.summary()
    result.raise_if_failed()
    return result.bytes_scanned


def plant(storage: Storage, name: str, baseline) -> None:
    """Fault injection: PHOENIX_FAULT_PLANT=file|deleted-file writes some of the sampled
    originals into a file on the stopped breeder (and deletes it again), as a careless
    step would: the forensic gate must find them (a deleted one only where freed blocks
    are part of the image, RBD, and only if their zeroing is skipped)."""
    how = os.environ.get("PHOENIX_FAULT_PLANT")
    if how not in ("file", "deleted-file"):
        return
    values, _columns = baseline.needles._items()
    path = storage.attach(name) / "planted.txt"
    with open(path, "wb") as f:
        f.write(b"\n".join(values[:50]) * 64)
        f.flush()
        os.fsync(f.fileno())
    if how == "deleted-file":
        path.unlink()
    storage.detach(name)


@task(name="6 snapshot + protect breeder", cache_policy=NONE)
def snapshot_breeder(storage: Storage, name: str) -> None:
    if BREEDER_SNAPSHOT not in storage.snapshots(name):
        storage.snapshot(name, BREEDER_SNAPSHOT)
    storage.protect(name, BREEDER_SNAPSHOT)


@task(name="7 clone + flatten golden", cache_policy=NONE)
def clone_golden(storage: Storage, breeder: str, golden: str, scanned: int) -> None:
    if not storage.exists(golden):
        storage.clone(breeder, BREEDER_SNAPSHOT, golden)
    storage.set_meta(golden, META_KIND, GOLDEN)
    storage.set_meta(golden, META_STATE, BREEDING)
    storage.set_meta(golden, META_CREATED, catalog.utc_iso())
    storage.set_meta(golden, META_FORENSIC, f"passed {catalog.utc_iso()} {scanned}")
    storage.flatten(golden)


@task(name="8 snapshot + protect + publish golden", cache_policy=NONE)
def publish(storage: Storage, golden: str) -> None:
    if BASE_SNAPSHOT not in storage.snapshots(golden):
        storage.snapshot(golden, BASE_SNAPSHOT)
    storage.protect(golden, BASE_SNAPSHOT)
    storage.set_meta(golden, META_STATE, PUBLISHED)  # the atomic publish: `latest` moves here


@task(name="9 unprotect + delete breeder", cache_policy=NONE)
def remove_breeder(storage: Storage, runtime: Runtime, breeder: str) -> None:
    runtime.remove(breeder)
    catalog.remove_generation(storage, breeder)


@task(name="10 retire old generations", cache_policy=NONE)
def retire(storage: Storage, keep: int) -> list[str]:
    return catalog.retire(storage, keep)


@task(name="0 remove leftovers of killed cycles", cache_policy=NONE)
def remove_leftovers(storage: Storage, runtime: Runtime) -> list[str]:
    return catalog.remove_leftovers(storage, runtime)
