"""What a Prefect UI user sees of a spawn: where the environment is, runs findable by branch,
an expiry that follows the pipeline — through the real server and worker, as the UI starts runs."""

from __future__ import annotations

import json
import time

import pytest

from phoenix.names import env_id
from tests.conftest import run_phoenix


@pytest.fixture(scope="module")
def worker(settings, prefect_server):
    from infra.local import worker

    return worker.up(settings)


def _client():
    from prefect.client.orchestration import get_client

    return get_client(sync_client=True)


def test_a_spawn_run_of_the_deployment_shows_where_the_environment_is(worker, published, unique):
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey, LogFilter, LogFilterFlowRunId
    from prefect.deployments import run_deployment

    gen = published("local")
    name = f"feature/{unique}-ui"
    eid = env_id(name)
    fr = run_deployment(name="spawn/spawn", parameters={"name": name, "ttl": "1h"}, timeout=300)
    try:
        assert fr.state.is_completed(), fr.state.message
        assert fr.name == f"spawn/{name}"
        with _client() as client:
            run = client.read_flow_run(fr.id)
            assert {f"env:{eid}", f"generation:{gen}"} <= set(run.tags)
            logs = "\n".join(lg.message for lg in client.read_logs(
                LogFilter(flow_run_id=LogFilterFlowRunId(any_=[fr.id])), limit=200))
            arts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[f"env-{eid}"])))
        assert f"{name} ready at 127.0.0.1:" in logs and "database app, user app" in logs
        assert arts and "| host | `127.0.0.1` |" in arts[0].data and "| port |" in arts[0].data
        assert "password" not in arts[0].data.split("The password is not shown here.")[0].lower()
    finally:
        assert run_phoenix("teardown", name).returncode == 0


def test_a_re_spawn_moves_the_expiry(published, unique):
    published("local")
    name = f"{unique}-respawn"
    first = json.loads(run_phoenix("spawn", name, "--ttl", "1h", "--json").stdout.strip().splitlines()[-1])
    time.sleep(1.1)
    again = json.loads(run_phoenix("spawn", name, "--ttl", "1h", "--json").stdout.strip().splitlines()[-1])
    try:
        assert again["id"] == first["id"] and again["password"] == first["password"]
        assert again["expires_at"] > first["expires_at"]
    finally:
        assert run_phoenix("teardown", name).returncode == 0


def test_an_unreachable_prefect_api_is_one_line_exit_5(unique):
    res = run_phoenix("ci", "spawn", unique, env={"PREFECT_API_URL": "http://127.0.0.1:9/api"}, timeout=120)
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.strip()]
    assert res.returncode == 5 and "Traceback" not in res.stderr
    assert lines[-1].startswith("phoenix: error: the Prefect API at http://127.0.0.1:9/api is not reachable")


def test_a_bad_ttl_is_refused_before_any_run_starts(worker, unique):
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName
    from prefect.deployments import run_deployment

    name = f"{unique}-parsecs"
    with pytest.raises(Exception) as err:
        run_deployment(name="spawn/spawn", parameters={"name": name, "ttl": "3 parsecs"}, timeout=0)
    assert "ttl" in str(err.value) or "pattern" in str(err.value)
    with _client() as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[f"spawn/{name}"])))
    assert runs == []


def test_with_no_source_configured_the_breed_schedule_is_paused_and_says_why(worker, settings):
    assert settings.source is None  # the test stack configures none
    with _client() as client:
        dep = client.read_deployment_by_name("breed/breed")
    assert dep.schedules and not any(s.active for s in dep.schedules)
    assert "PAUSED" in dep.description and "`source`" in dep.description
    assert "Europe/Berlin" in dep.description  # the schedule's time zone, where the UI shows it
