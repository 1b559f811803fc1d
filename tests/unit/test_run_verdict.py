"""The reaper's rule for flow runs (tasks/runs.py): a run is marked Crashed only when its
process is provably gone, or it never had one and nothing could still start it — never a
live run. Real processes of this host, no stand-ins."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from phoenix.proc import pid_started
from tasks.runs import Process, RunView, verdict, worker_alive

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
BOUND = timedelta(minutes=15)


def _dead_process() -> Process:
    child = subprocess.Popen(["sleep", "60"])
    here = Process.current()
    record = Process(here.host, child.pid, pid_started(child.pid) or 0, here.where)
    child.kill()
    child.wait()  # reaped: the pid names nothing now
    assert record.start > 0
    return record


def _never(pool: str) -> bool:
    raise AssertionError("a run with a process record is judged by it alone")


def test_the_record_round_trips_through_a_tag():
    me = Process.current()
    assert me.pid == os.getpid() and me.start > 0 and me.where
    assert Process.from_tags(["env:x", me.tag(), "generation:g"]) == me
    assert Process.from_tags(["env:x", "phoenix.process:h:notapid:1:w"]) is None


def test_a_live_process_is_never_marked_in_any_state_however_old():
    me = Process.current()
    for state in ("RUNNING", "PENDING", "SCHEDULED"):
        run = RunView(state, NOW - timedelta(days=30), me, None)
        assert verdict(run, me, NOW, BOUND, _never) is None


def test_a_dead_process_of_this_host_is_marked_at_once():
    me, dead = Process.current(), _dead_process()
    why = verdict(RunView("RUNNING", NOW, dead, None), me, NOW, BOUND, _never)
    assert why is not None and f"{dead.host}:{dead.pid} is gone" in why and "\n" not in why


def test_a_recycled_pid_is_not_the_recorded_process():
    me = Process.current()
    other_start = Process(me.host, me.pid, me.start + 1, me.where)  # this pid, another start: a recycled pid
    assert verdict(RunView("RUNNING", NOW, other_start, None), me, NOW, BOUND, _never) is not None


@pytest.mark.parametrize("elsewhere", [{"host": "another-host"}, {"where": "0000beef.4026531999"}, {"where": ""}])
def test_a_record_from_another_host_or_namespace_is_left_alone(elsewhere):
    me, dead = Process.current(), _dead_process()
    record = Process(**{**dead.__dict__, **elsewhere})
    assert verdict(RunView("RUNNING", NOW, record, None), me, NOW, BOUND, _never) is None


def test_a_run_without_a_record_is_marked_only_when_abandoned():
    me = Process.current()
    old, young = NOW - BOUND - timedelta(seconds=1), NOW - BOUND + timedelta(seconds=1)
    no_worker, worker = (lambda pool: False), (lambda pool: True)
    assert verdict(RunView("RUNNING", old, None, "phoenix"), me, NOW, BOUND, no_worker) is None  # who knows
    assert verdict(RunView("PENDING", young, None, "phoenix"), me, NOW, BOUND, no_worker) is None
    assert verdict(RunView("PENDING", old, None, "phoenix"), me, NOW, BOUND, worker) is None  # it may start it
    why = verdict(RunView("PENDING", old, None, "phoenix"), me, NOW, BOUND, no_worker)
    assert why is not None and "abandoned: pending for 15 min and work pool 'phoenix' has no live worker" in why
    assert verdict(RunView("SCHEDULED", old, None, None), me, NOW, BOUND, worker) is not None  # no pool: nobody


def test_a_worker_is_alive_until_three_heartbeats_are_missed():
    assert worker_alive(NOW - timedelta(seconds=89), 30, NOW)
    assert not worker_alive(NOW - timedelta(seconds=91), 30, NOW)
    assert not worker_alive(None, 30, NOW)
