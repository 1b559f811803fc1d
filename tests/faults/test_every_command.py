"""Every command, against an unreachable Prefect API, an unreachable Ceph cluster and a bad
config: one `phoenix: error:` line (the last one on stderr), no traceback, the exit code of
the README's table (issue 14, item 7)."""

from __future__ import annotations

import pytest

from tests.conftest import run_phoenix

# The commands that start a flow run (in-process, or through the API for `ci`).
RUNS = [["spawn", "fx-a"], ["teardown", "fx-a"], ["reset", "fx-a"], ["reap"], ["ci", "spawn", "fx-a"],
        ["ci", "teardown", "fx-a"]]
# The commands that open the storage.
STORAGE = [["ls"], ["spawn", "fx-a"], ["teardown", "fx-a"], ["reset", "fx-a"], ["reap"]]
EVERY = [*RUNS, ["ls"], ["stack", "status"], ["breed"], ["gate", "--image", "latest"], ["generate", "/dev/null"]]


def _one_line(res, code: int) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout, res.stderr[-3000:]
    assert res.returncode == code, res.stderr[-3000:]
    errors = [ln for ln in lines if ln.startswith("phoenix: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], res.stderr[-3000:]
    return errors[0]


@pytest.mark.parametrize("args", RUNS, ids=" ".join)
def test_an_unreachable_prefect_api(args):
    res = run_phoenix(*args, env={"PREFECT_API_URL": "http://127.0.0.1:9/api"}, timeout=180)
    assert "Prefect API at http://127.0.0.1:9/api is not reachable" in _one_line(res, 5)


@pytest.mark.parametrize("args", STORAGE, ids=" ".join)
def test_an_unreachable_ceph_cluster(args, tmp_path):
    (tmp_path / "ceph").mkdir()
    (tmp_path / "ceph" / "ceph.conf").write_text(
        "[global]\nmon_host = 127.0.0.1:9\nauth_cluster_required = none\nauth_service_required = none\n"
        "auth_client_required = none\n")
    res = run_phoenix(*args, backend="rbd", env={"PHOENIX_HOME": str(tmp_path)}, timeout=180)
    assert "Ceph cluster of " in _one_line(res, 1)


@pytest.mark.parametrize("bad", [{"PHOENIX_STORAGE": "floppy"}, {"PHOENIX_DEFAULT_TTL": "3 parsecs"}],
                         ids=["storage", "ttl"])
@pytest.mark.parametrize("args", EVERY, ids=" ".join)
def test_a_bad_config(args, bad):
    res = run_phoenix(*args, env=bad, timeout=180)
    line = _one_line(res, 2)
    assert "configuration key" in line and ("expected" in line), line


@pytest.mark.parametrize("args, code, says", [
    (["breed", "--mode", "sideways"], 2, "--mode 'sideways': expected auto, full or incremental"),
    (["churn", "--dsn", "mysql://root@127.0.0.1:9/shop", "--fraction", "2"], 2, "--fraction 2.0: expected a share"),
    (["churn", "--dsn", "mysql://root@127.0.0.1:9/shop"], 1, "churn: "),
], ids=["mode", "fraction", "unreachable"])
def test_the_incremental_commands_refuse_bad_input_in_one_line(args, code, says):
    assert says in _one_line(run_phoenix(*args, timeout=180), code)
