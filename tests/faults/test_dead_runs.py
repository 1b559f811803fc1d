"""Flow runs whose process died are marked Crashed by the reaper, never left RUNNING or
PENDING in Prefect forever; a live run is never marked (issue 17, item 8). Real CLI, real
Prefect server, real SIGKILL."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time

from tests.conftest import REPO, run_phoenix


def _runs_named(name: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))


def _the_run(name: str, before: set):
    """The one run of `name` this test made (the suite may have run before: `before` are older ones)."""
    runs = [r for r in _runs_named(name) if r.id not in before]
    assert len(runs) == 1, [(r.name, r.state_name) for r in runs]
    return runs[0]


def _ids(name: str) -> set:
    return {r.id for r in _runs_named(name)}


def _until(what, check, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return value


def test_a_cli_spawn_killed_midway_is_marked_crashed_by_the_reaper(local_golden, unique):
    name = f"{unique}-dead"
    assert run_phoenix("teardown", name).returncode == 0
    before = _ids(f"spawn/{name}")
    killed = run_phoenix("spawn", name, "--json", env={"PHOENIX_FAULT_KILL_AFTER": "spawn:clone"}, timeout=300)
    assert killed.returncode == -9, killed.stderr[-1500:]
    run = _the_run(f"spawn/{name}", before)
    assert run.state.type.value == "RUNNING"  # what Prefect alone makes of it: running, forever

    reaped = run_phoenix("reap", timeout=300)
    assert reaped.returncode == 0, reaped.stderr[-1500:]
    assert f"crashed_runs: spawn/{name}" in reaped.stderr
    run = _the_run(f"spawn/{name}", before)
    assert run.state.type.value == "CRASHED" and run.state.is_final()
    assert "is gone (marked by the reaper)" in run.state.message and "\n" not in run.state.message


def test_a_live_run_is_never_marked(local_golden, settings, unique):
    """A spawn waiting for its environment's lock is RUNNING, and alive: a reap meanwhile
    leaves it alone, and it completes."""
    from phoenix.locks import file_lock
    from phoenix.names import env_id

    name = f"{unique}-live"
    assert run_phoenix("teardown", name).returncode == 0
    before = _ids(f"spawn/{name}")
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        with file_lock(settings.home_dir / "locks" / f"env-{env_id(name)}.lock"):
            spawn = subprocess.Popen([str(REPO / ".venv" / "bin" / "phoenix"), "spawn", name, "--json"],
                                     stdout=out, stderr=err, env={**os.environ, "PHOENIX_STORAGE": "local"}, cwd=REPO)
            try:
                _until("the spawn's run to be RUNNING",
                       lambda: [r for r in _runs_named(f"spawn/{name}")
                                if r.id not in before and r.state.type.value == "RUNNING"])
                reaped = run_phoenix("reap", timeout=300)
                assert reaped.returncode == 0, reaped.stderr[-1500:]
                assert spawn.poll() is None  # still waiting for the lock: alive the whole reap long
                assert _the_run(f"spawn/{name}", before).state.type.value == "RUNNING"
            except BaseException:
                spawn.kill()
                raise
        assert spawn.wait(timeout=300) == 0, (err.seek(0), err.read()[-1500:])
    assert _the_run(f"spawn/{name}", before).state.type.value == "COMPLETED"
    assert run_phoenix("teardown", name).returncode == 0


def test_a_pending_run_nothing_will_start_is_marked_once_abandoned(prefect_server, unique):
    """A run created through the API that no worker picks up (here: no work pool at all)."""
    from prefect.client.orchestration import get_client
    from prefect.states import Pending

    from flows.spawn import spawn as spawn_flow

    name = f"spawn/{unique}-abandoned"
    before = _ids(name)
    with get_client(sync_client=True) as client:
        created = client.create_flow_run(spawn_flow, name=name, parameters={"name": f"{unique}-abandoned"},
                                         state=Pending())
    reaped = run_phoenix("reap", env={"PHOENIX_PREFECT__ABANDONED_AFTER": "3600"}, timeout=300)
    assert reaped.returncode == 0, reaped.stderr[-1500:]
    assert _the_run(name, before).state.type.value == "PENDING"  # not waiting long enough yet

    _until("the run to have waited 1 s", lambda: time.time() - created.state.timestamp.timestamp() > 1.5)
    reaped = run_phoenix("reap", env={"PHOENIX_PREFECT__ABANDONED_AFTER": "1"}, timeout=300)
    assert reaped.returncode == 0, reaped.stderr[-1500:]
    run = _the_run(name, before)
    assert run.state.type.value == "CRASHED", run.state
    assert run.state.message.startswith("abandoned: pending for 0 min and it has no work pool")
