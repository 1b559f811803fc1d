"""`phoenix ci` against a real Prefect server and worker: final states, results, dotenv."""

from __future__ import annotations

import json

import pymysql
import pytest

from tests.conftest import run_phoenix


@pytest.fixture(scope="module")
def worker(settings, prefect_server):
    from infra.local import worker

    return worker.up(settings)


def test_ci_spawn_writes_the_dotenv_and_the_run_result(worker, published, tmp_path, unique):
    gen = published("local")
    dotenv, pw = tmp_path / "phoenix.env", tmp_path / "db.pw"
    res = run_phoenix("ci", "spawn", f"{unique}-mr", "--wait", "--dotenv", str(dotenv), "--password-file", str(pw),
                      "--ttl", "1h", timeout=300)
    assert res.returncode == 0, res.stderr[-1500:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["generation"] == gen and "password" not in out
    env = dict(line.split("=", 1) for line in dotenv.read_text().splitlines())
    assert set(env) == {"DYNAMIC_ENVIRONMENT_URL", "PHOENIX_ENV", "DB_HOST", "DB_PORT", "DB_NAME", "DB_USER"}
    assert env["PHOENIX_ENV"] == out["id"] and env["DB_PORT"] == str(out["port"])
    assert pw.stat().st_mode & 0o777 == 0o600 and pw.read_text() not in dotenv.read_text()
    conn = pymysql.connect(host=env["DB_HOST"], port=int(env["DB_PORT"]), user=env["DB_USER"],
                           password=pw.read_text(), database=env["DB_NAME"])
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM customers")
        assert cur.fetchone()[0] > 0
    conn.close()
    res = run_phoenix("ci", "teardown", f"{unique}-mr", timeout=300)
    assert res.returncode == 0 and json.loads(res.stdout.strip().splitlines()[-1])["removed"] is True


def test_ci_spawn_exits_non_zero_when_the_flow_fails(worker, published, unique):
    published("local")
    res = run_phoenix("ci", "spawn", f"{unique}-bad", "--generation", "golden-19990101T000000Z", timeout=300)
    assert res.returncode == 5
    last = res.stderr.strip().splitlines()[-1]
    assert "ended FAILED" in last and "does not exist" in last


def test_ci_without_a_prefect_api_is_a_clear_error(unique):
    res = run_phoenix("ci", "teardown", unique, env={"PREFECT_API_URL": ""})
    assert res.returncode == 2 and "PREFECT_API_URL is not set" in res.stderr  # bad config, as the README says
