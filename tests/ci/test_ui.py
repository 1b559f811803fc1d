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
    # incremental where it can be on the working-day schedule, a full copy every night
    assert sorted((s.slug, s.parameters.get("mode")) for s in dep.schedules) == [("nightly-full", "full"),
                                                                              ("refresh", "auto")]
    assert "PAUSED" in dep.description and "`source`" in dep.description
    assert "Europe/Berlin" in dep.description  # the schedule's time zone, where the UI shows it


def test_a_ci_job_elsewhere_gets_the_password_and_no_record_holds_it(worker, published, settings, tmp_path, unique):
    """Only the Prefect API URL, as a job on another machine: the password arrives sealed to
    the job's own key; no flow run, task run, log, artifact or result file holds it."""
    import os
    import subprocess

    import pymysql
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    from tests.conftest import REPO

    published("local")
    name, pw_file = f"{unique}-sealed", tmp_path / "db.pw"
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PREFECT_API_URL": os.environ["PREFECT_API_URL"],
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    res = subprocess.run([str(REPO / ".venv/bin/phoenix"), "ci", "spawn", name, "--password-file", str(pw_file)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr[-1500:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    password = pw_file.read_text()
    try:
        assert len(password) >= 20 and "sealed_password" not in out
        conn = pymysql.connect(host=out["host"], port=out["port"], user=out["user"], password=password,
                               database=out["database"])
        conn.close()
        with _client() as client:
            run = client.read_flow_run(out["flow_run_id"])
            records = [run.model_dump_json()]
            records += [t.model_dump_json() for t in client.read_task_runs()]
            records += [lg.message for lg in client.read_logs(
                LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])), limit=200)]
            records += [a.model_dump_json() for a in client.read_artifacts()]
        assert not [r for r in records if password in r]
        results = settings.home_dir / "prefect" / "results"
        held = subprocess.run(["grep", "-rlF", password, str(results)], capture_output=True, text=True).stdout
        assert held == ""
    finally:
        assert run_phoenix("teardown", name).returncode == 0


@pytest.mark.parametrize("command", [["spawn"], ["ci", "spawn"]], ids=["spawn", "ci-spawn"])
def test_a_bad_ttl_on_the_command_line_is_one_line_exit_2_and_starts_no_run(command, unique):
    """`phoenix spawn --ttl '3 parsecs'` printed Prefect's validation traceback (exit 1), and
    `phoenix ci spawn` called the server's refusal an unreachable API (exit 5)."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    name = f"{unique}-cli-parsecs"
    res = run_phoenix(*command, name, "--ttl", "3 parsecs", timeout=120)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr[-2000:]
    assert res.stderr.strip().splitlines() == ["phoenix: error: ttl '3 parsecs': use a number and a unit, "
                                               "e.g. 30m, 8h, 2d"]
    with _client() as client:
        assert client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[f"spawn/{name}"]))) == []


def test_parameters_the_deployment_refuses_are_bad_input_not_an_unreachable_api(worker, unique):
    from deployments.ci import run
    from phoenix.errors import InvalidInput

    with pytest.raises(InvalidInput) as err:  # a CI client older than the check, or another field
        run("spawn/spawn", {"name": f"{unique}-refused", "ttl": "3 parsecs"}, timeout=30)
    assert err.value.exit_code == 2 and "Validation failed for field 'ttl'" in str(err.value)
