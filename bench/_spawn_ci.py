"""CI's path for bench/spawn.py: trigger the `spawn` deployment through the Prefect API as
`phoenix ci spawn` does, a worker runs it, and say where the seconds go.

Each run's time is cut at the flow run's own state timestamps (the server's clock, the
same host): the API creating the run, the worker's poll picking it up (Scheduled →
Pending), the flow-run process starting and importing (Pending → Running), the flow's
body (Running → Completed; of it, the spawn task itself), and the client noticing the
final state and reading the result (Completed → returned). The client's poll interval
is measured side by side: Prefect's default 5 s against the CI client's."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator

_PARTS = ("create", "worker pick-up", "process start + imports", "flow body", "of it: spawn task",
          "client sees the end")


def _parts(client, flow_run_id, t_call: float, t_back: float, wall0: float) -> dict[str, float]:
    """Seconds per part of one run; monotonic call/return times mapped to wall time via wall0."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    fr = client.read_flow_run(flow_run_id)
    states = {s.type.value: s.timestamp.timestamp() for s in client.read_flow_run_states(flow_run_id)}
    tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    spawn = sum(t.total_run_time.total_seconds() for t in tasks if t.name.startswith("clone golden"))
    call, back = wall0 + t_call, wall0 + t_back
    return {"create": fr.created.timestamp() - call,
            "worker pick-up": states["PENDING"] - states["SCHEDULED"],
            "process start + imports": states["RUNNING"] - states["PENDING"],
            "flow body": states["COMPLETED"] - states["RUNNING"],
            "of it: spawn task": spawn,
            "client sees the end": back - states["COMPLETED"]}


def _series(poll: float, runs: int, tag: str) -> tuple[list[float], dict[str, list[float]]]:
    from prefect import get_client

    from deployments.ci import run

    totals, parts = [], {p: [] for p in _PARTS}
    wall0 = time.time() - time.monotonic()
    with get_client(sync_client=True) as client:
        for i in range(runs):
            name = f"ci-{tag}-{i}"
            t0 = time.monotonic()
            out = run("spawn/spawn", {"name": name, "generation": "latest", "ttl": "1h"}, timeout=300,
                      poll_interval=poll)
            t1 = time.monotonic()
            totals.append(t1 - t0)
            for p, v in _parts(client, out.flow_run_id, t0, t1, wall0).items():
                parts[p].append(v)
            run("teardown/teardown", {"name": name}, timeout=300, poll_interval=poll)
    return totals, parts


def bench(runs: int) -> Iterator[str]:
    """Lines of the report: per poll interval, p50 of the total and of each part."""
    from deployments.ci import POLL_SECONDS

    for poll, label in ((5.0, "Prefect's default poll, 5 s"), (POLL_SECONDS, f"CI client's poll, {POLL_SECONDS:g} s")):
        totals, parts = _series(poll, runs, f"{poll:g}".replace(".", "-"))
        yield (f"trigger → ready through the Prefect API + worker ({label}): p50 {statistics.median(totals):.2f} s, "
               f"max {max(totals):.2f} s over {runs} runs")
        yield "  p50 per part: " + ", ".join(f"{p} {statistics.median(v):.2f} s" for p, v in parts.items())
