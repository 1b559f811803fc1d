"""The GitLab template as a GitLab pipeline runs it: gitlab-ci-local (the runner emulator,
installed by `make install`) with the shell executor, against the real Prefect server and
worker — spawn job and its dotenv, the branch's migrations, a test job that logs in with the
sealed password, the stop job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import REPO, run_phoenix

# Where infra/local/bootstrap.sh installs it (the same cache variable, the same pinned version).
GITLAB_CI_LOCAL = (Path(os.environ.get("PHOENIX_NPM_CACHE", "/var/cache/phoenix/npm"))
                   / "gitlab-ci-local-4.70.1/node_modules/.bin/gitlab-ci-local")
MIGRATION = """
import os, pymysql
c = pymysql.connect(host=os.environ["DB_HOST"], port=int(os.environ["DB_PORT"]), user=os.environ["DB_USER"],
                    password=os.environ["DB_PASSWORD"], database=os.environ["DB_NAME"], autocommit=True)
c.cursor().execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INT PRIMARY KEY)")
c.cursor().execute("INSERT IGNORE INTO schema_migrations VALUES (7)")
print("migrated to 7 as", os.environ["DB_USER"])
"""
PIPELINE = """stages: [deploy, test]
include:
  - local: phoenix.gitlab-ci.yml
my-tests:
  extends: .phoenix:test-example
  script:
    - !reference [.phoenix:test-example, script]
    - mariadb -h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER" -p"$(cat db.pw)" "$DB_NAME" -N -e 'SELECT CONCAT("schema at ", MAX(version)) FROM schema_migrations'
"""


@pytest.fixture(scope="module")
def worker(settings, prefect_server):
    from infra.local import worker

    return worker.up(settings)


@pytest.fixture
def project(tmp_path, unique):
    """A branch of a project that includes the template, as `include: project:` would."""
    assert GITLAB_CI_LOCAL.exists(), f"{GITLAB_CI_LOCAL} is missing: `make install` installs gitlab-ci-local"
    repo = tmp_path / "project"
    repo.mkdir()
    (repo / "phoenix.gitlab-ci.yml").write_text((REPO / "deployments/gitlab/phoenix.gitlab-ci.yml").read_text())
    (repo / ".gitlab-ci.yml").write_text(PIPELINE)
    (repo / "migrate.py").write_text(MIGRATION)
    git = ["git", "-C", str(repo), "-c", "user.email=ci@example.invalid", "-c", "user.name=ci"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "init"],
                 ["checkout", "-q", "-b", f"feature/{unique}-gl"]):
        subprocess.run([*git, *args], check=True)
    return repo


def _pipeline(repo: Path, *args: str, migrate: str = "") -> subprocess.CompletedProcess:
    env = {"PATH": f"{REPO / '.venv/bin'}:{os.environ['PATH']}", "HOME": str(repo.parent),
           "PREFECT_API_URL": os.environ["PREFECT_API_URL"], "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    return subprocess.run([str(GITLAB_CI_LOCAL), "--force-shell-executor", "--variable", "PHOENIX_TTL=2h",
                           "--variable", f"PHOENIX_MIGRATE={migrate}", *args],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=600)


def _environment(name: str) -> dict | None:
    envs = json.loads(run_phoenix("ls", "--json").stdout)["environments"]
    return next((e for e in envs if e["name"] == name), None)


def test_the_template_spawns_migrates_tests_and_stops_a_branch_environment(worker, published, project, unique):
    published("local")
    slug = f"feature-{unique}-gl"
    res = _pipeline(project, migrate=f"{sys.executable} migrate.py")
    try:
        out = res.stdout + res.stderr
        assert res.returncode == 0, out[-3000:]
        assert "PASS  phoenix:spawn" in out and "PASS  my-tests" in out
        assert out.count("migrated to 7 as app") == 1  # in the spawn job; the test job only connects
        assert "schema at 7" in out  # the test job logged in with the sealed password and saw the migration
        password = (project / "db.pw").read_text()
        assert len(password) >= 20 and password not in out  # the log shows no password
        dotenv = (project / "phoenix.env").read_text()
        assert f"PHOENIX_ENV={slug}" in dotenv and password not in dotenv
        env = _environment(slug)
        assert env is not None and env["state"] == "running"
        left = datetime.fromisoformat(env["expires_at"]) - datetime.now(UTC)
        assert 1.9 * 3600 < left.total_seconds() <= 2 * 3600  # PHOENIX_TTL reached Phoenix (and auto_stop_in)
    finally:
        stop = _pipeline(project, "phoenix:stop")
    assert stop.returncode == 0 and "PASS  phoenix:stop" in stop.stdout, (stop.stdout + stop.stderr)[-2000:]
    assert _environment(slug) is None


def test_a_failing_migration_fails_the_spawn_job_and_keeps_the_environment(worker, published, project, unique):
    published("local")
    slug = f"feature-{unique}-gl"
    res = _pipeline(project, "phoenix:spawn",
                    migrate=f"{sys.executable} -c \"print('boom: column exists'); raise SystemExit(3)\"")
    try:
        out = res.stdout + res.stderr
        assert res.returncode != 0 and "FAIL  phoenix:spawn" in out, out[-3000:]
        assert "boom: column exists" in out  # the migration's own output is in the job log
        assert "phoenix: error: the migration command exited 3" in out and "Traceback" not in out
        assert _environment(slug) is not None  # left for inspection
    finally:
        stop = _pipeline(project, "phoenix:stop")
    assert stop.returncode == 0, (stop.stdout + stop.stderr)[-2000:]
    assert _environment(slug) is None
