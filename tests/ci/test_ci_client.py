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


MIGRATION = """
import os, pymysql
c = pymysql.connect(host=os.environ["DB_HOST"], port=int(os.environ["DB_PORT"]), user=os.environ["DB_USER"],
                    password=os.environ["DB_PASSWORD"], database=os.environ["DB_NAME"])
c.cursor().execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INT PRIMARY KEY)")
c.cursor().execute("INSERT IGNORE INTO schema_migrations VALUES (42)")
c.commit()
print("migrated to 42")
"""


def test_the_migrations_hook_runs_against_the_environment_and_a_failure_fails_the_job(worker, published, tmp_path,
                                                                                       unique):
    import sys

    published("local")
    script = tmp_path / "migrate.py"
    script.write_text(MIGRATION)
    name, pw = f"{unique}-mig", tmp_path / "db.pw"
    res = run_phoenix("ci", "spawn", name, "--password-file", str(pw), "--ttl", "1h",
                      env={"PHOENIX_MIGRATE": f"{sys.executable} {script}"}, timeout=300)
    assert res.returncode == 0, res.stderr[-1500:]
    assert "migrated to 42" in res.stdout
    out = json.loads([line for line in res.stdout.splitlines() if line.startswith("{")][-1])
    conn = pymysql.connect(host=out["host"], port=out["port"], user=out["user"], password=pw.read_text(),
                           database=out["database"])
    with conn.cursor() as cur:
        cur.execute("SELECT version FROM schema_migrations")
        assert cur.fetchall() == ((42,),)  # the command reached the environment as its own user
    conn.close()

    res = run_phoenix("ci", "spawn", name, "--ttl", "1h",
                      "--migrate", f"{sys.executable} -c \"print('boom: column exists'); raise SystemExit(3)\"",
                      timeout=300)
    assert res.returncode == 1, res.stderr[-1500:]
    assert "boom: column exists" in res.stdout  # the migration's output is the job's
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("phoenix: error: the migration command exited 3") and out["id"] in last
    assert "Traceback" not in res.stderr
    ls = run_phoenix("ls", "--json")
    assert name in ls.stdout  # it stays for inspection
    assert run_phoenix("ci", "teardown", name, timeout=300).returncode == 0
