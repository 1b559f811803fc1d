"""Flow runs whose process is gone: the reaper marks them Crashed, so a CLI run killed with
SIGKILL is not RUNNING forever, nor a CI run no worker will ever pick up PENDING forever.

Why not Prefect's own mechanism: Prefect 3 can emit flow-run heartbeats
(`PREFECT_FLOWS_HEARTBEAT_FREQUENCY`, at least 30 s) and an automation can crash a run whose
heartbeats stop. That covers RUNNING only — a run that never started never beats — and it
marks a run on *silence*: a live run whose heartbeats are late (a loaded host, buffered
events, a stalled OSD freezing its process) is crashed while it works. Here the verdict
is the kernel's, on the host that ran the process: a run is marked only when its process is
provably gone, or when it never had one and no worker exists that could still start it.

Each Phoenix flow run carries a record of its process as a tag,
`phoenix.process:<host>:<pid>:<start>:<boot.pidns>` — set at its creation by the CLI and
again as the first thing the flow does (a worker's run is created elsewhere).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from phoenix.proc import pid_namespace, pid_started

TAG = "phoenix.process"
# The flows whose runs are Phoenix's (their names in flows/*.py); other flows on the same
# Prefect server are not the reaper's business.
FLOWS = ("breed", "spawn", "teardown", "reset", "reap")


@dataclass(frozen=True)
class Process:
    """One process, named so that no other process — on another host, in another pid
    namespace, after a reboot, or with the pid recycled — can be mistaken for it."""

    host: str
    pid: int
    start: int
    where: str  # kernel boot + pid namespace (phoenix.proc.pid_namespace)

    @classmethod
    def current(cls) -> Process:
        pid = os.getpid()
        return cls(socket.gethostname(), pid, pid_started(pid) or 0, pid_namespace())

    def tag(self) -> str:
        return f"{TAG}:{self.host}:{self.pid}:{self.start}:{self.where}"

    @classmethod
    def from_tags(cls, tags: Iterable[str]) -> Process | None:
        for tag in tags:
            parts = tag.split(":")
            if len(parts) == 5 and parts[0] == TAG and parts[2].isdigit() and parts[3].isdigit():
                return cls(parts[1], int(parts[2]), int(parts[3]), parts[4])
        return None

    def same_namespace(self, other: Process) -> bool:
        return self.host == other.host and bool(self.where) and self.where == other.where


@dataclass(frozen=True)
class RunView:
    """What the verdict needs of a flow run."""

    state: str  # a StateType value: RUNNING, PENDING, SCHEDULED
    since: datetime  # when it entered that state (a scheduled run: when it was due)
    process: Process | None
    pool: str | None


def verdict(run: RunView, here: Process, now: datetime, abandoned_after: timedelta,
            pool_has_worker: Callable[[str], bool], started: Callable[[int], int | None] = pid_started) -> str | None:
    """Why `run` is dead (the Crashed state's one-line message), or None: leave it alone.

    Safe by construction — it never names a live run:
    - a run with a process record is judged only in the record's own host, boot and pid
      namespace, and only dead when no process with that pid *and start time* exists
      there (a recycled pid has another start time; a record from elsewhere is skipped);
    - a run without one (a worker's run before its flow started) is dead only when it has
      waited longer than `abandoned_after` in PENDING or SCHEDULED and its work pool has
      no live worker — nothing exists that could still run it.
    """
    if run.process is not None:
        if not run.process.same_namespace(here):
            return None  # another host or namespace: nothing here can tell
        if started(run.process.pid) == run.process.start:
            return None
        return f"its process {run.process.host}:{run.process.pid} is gone (marked by the reaper)"
    if run.state not in ("PENDING", "SCHEDULED") or now - run.since < abandoned_after:
        return None
    if run.pool and pool_has_worker(run.pool):
        return None
    waited = int((now - run.since).total_seconds() // 60)
    who = f"work pool {run.pool!r} has no live worker" if run.pool else "it has no work pool"
    return f"abandoned: {run.state.lower()} for {waited} min and {who} (marked by the reaper)"


def worker_alive(last_heartbeat: datetime | None, interval_s: int | None, now: datetime) -> bool:
    """Prefect's own rule: a worker is offline after three missed heartbeats."""
    return last_heartbeat is not None and now - last_heartbeat < 3 * timedelta(seconds=interval_s or 30)


def crash_dead_runs(abandoned_after: timedelta, now: datetime | None = None) -> list[str]:
    """Mark Crashed every Phoenix flow run in RUNNING, PENDING or SCHEDULED that `verdict`
    finds dead; the names of the runs marked."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.states import Crashed

    here = Process.current()
    marked: list[str] = []
    with get_client(sync_client=True) as client:
        now = now or datetime.now(UTC)
        pools: dict[str, bool] = {}

        def pool_has_worker(pool: str) -> bool:  # asked only for a run that waited too long
            if pool not in pools:
                pools[pool] = any(worker_alive(w.last_heartbeat_time, w.heartbeat_interval_seconds, now)
                                  for w in client.read_workers_for_work_pool(pool))
            return pools[pool]

        flows = FlowFilter(name=FlowFilterName(any_=list(FLOWS)))
        states = FlowRunFilter(state=FlowRunFilterState(type=FlowRunFilterStateType(
            any_=[StateType.RUNNING, StateType.PENDING, StateType.SCHEDULED])))
        runs: list = []
        offset = 0
        while page := client.read_flow_runs(flow_filter=flows, flow_run_filter=states, limit=200, offset=offset):
            runs += page
            offset += len(page)
        for run in runs:
            if run.state is None:
                continue
            due = run.next_scheduled_start_time or run.expected_start_time
            since = due if run.state.type == StateType.SCHEDULED and due else run.state.timestamp
            view = RunView(run.state.type.value, since, Process.from_tags(run.tags), run.work_pool_name)
            why = verdict(view, here, now, abandoned_after, pool_has_worker)
            if why is None:
                continue
            # Not forced: the server's rules still apply (a run that finished meanwhile stays finished).
            if client.set_flow_run_state(run.id, Crashed(message=why)).status == SetStateStatus.ACCEPT:
                marked.append(run.name)
    return marked
