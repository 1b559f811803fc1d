"""Environments on the local cluster's real node, driven through the CLI as a user does
with `runtime = "kubernetes"` and nothing else set: the volumes (`local` PVs on btrfs
clones mounted here) and the MariaDB image (built here) are derived from the cluster; the
pod is Ready by the kubelet's own probe, and the address `spawn` returns is the Service's
ClusterIP, which kube-proxy routes from this host."""

from __future__ import annotations

import ipaddress
import json

import pymysql
import pytest

from infra.local import kube, kube_node
from phoenix.names import env_id, image_name
from tasks.runtime.kubernetes import manifests as m
from tests.conftest import run_phoenix

pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def on_cluster(kube_cluster):
    return {"PHOENIX_RUNTIME": "kubernetes", "PHOENIX_KUBERNETES__KUBECONFIG": kube_cluster["kubeconfig"]}


@pytest.fixture
def names(unique, on_cluster):
    """Environment names for this test; every one is torn down afterwards, on its runtime."""
    made: list[tuple[str, dict]] = []

    def name(suffix: str, env: dict | None = None) -> str:
        made.append((f"{unique}-{suffix}", on_cluster if env is None else env))
        return made[-1][0]

    yield name
    for n, env in made:
        run_phoenix("teardown", n, env=env)


def _spawn(name: str, env: dict, *extra: str) -> dict:
    res = run_phoenix("spawn", name, "--json", *extra, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def _conn(info: dict, password: str | None = None) -> pymysql.Connection:
    return pymysql.connect(host=info["host"], port=info["port"], user=info["user"], connect_timeout=10,
                           password=info["password"] if password is None else password,
                           database=info["database"], autocommit=True)


def _checksums(info: dict) -> dict[str, int]:
    with _conn(info) as conn, conn.cursor() as cur:
        cur.execute("SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")
        tables = [r[0] for r in cur.fetchall()]
        cur.execute("CHECKSUM TABLE " + ", ".join(f"`{t}`" for t in tables))
        return {r[0].split(".", 1)[1]: r[1] for r in cur.fetchall()}


def _leftovers(core, settings, storage, name: str) -> list[str]:
    eid = env_id(name)
    ns, image = m.namespace_for(settings, eid), image_name(eid)
    found = []
    if any(n.metadata.name == ns for n in core.list_namespace().items):
        found.append(f"namespace {ns}")
    if any(pv.metadata.name == ns for pv in core.list_persistent_volume().items):
        found.append(f"PV {ns}")
    if storage.exists(image):
        found.append(f"image {image}" + (" (attached)" if storage.attached(image) else ""))
    return found


def test_spawn_runs_on_the_node_and_serves_the_golden_as_a_local_spawn_does(
        core, on_cluster, node_settings, storage_local, published, names):
    gen = published("local")
    info = _spawn(names("k8s"), on_cluster)
    local = _spawn(names("loc", {}), {})
    assert info["generation"] == local["generation"] == gen
    assert ipaddress.ip_address(info["host"]) in ipaddress.ip_network(kube.SERVICE_CIDR)
    ns = m.namespace_for(node_settings, info["id"])
    pod = core.list_namespaced_pod(ns).items[0]
    assert pod.spec.node_name == kube_node.NODE  # the real kubelet runs it …
    assert pod.spec.containers[0].image.startswith("localhost/phoenix-mariadb:")  # … from the image built here
    pv = core.read_persistent_volume(ns)
    assert pv.spec.local.path == str(storage_local.attached(image_name(info["id"])))
    with _conn(info) as conn, conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        assert cur.fetchone()[0].startswith(info["user"] + "@")
    served = _checksums(info)
    assert served == _checksums(local) and len(served) >= 8


def test_two_environments_are_isolated_and_reset_throws_changes_away(
        core, on_cluster, node_settings, storage_local, published, names):
    published("local")
    a, b = names("iso-a"), names("iso-b")
    ia, ib = _spawn(a, on_cluster), _spawn(b, on_cluster)
    assert ia["host"] != ib["host"] and ia["password"] != ib["password"]
    with _conn(ia) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE phx_mark (x INT)")
    with _conn(ib) as conn, conn.cursor() as cur:
        cur.execute("SHOW TABLES LIKE 'phx_mark'")
        assert cur.fetchall() == ()
    with pytest.raises(pymysql.err.OperationalError):
        _conn({**ib, "user": ia["user"]}, password=ia["password"]).close()  # a's password is not b's

    res = run_phoenix("reset", a, env=on_cluster)
    assert res.returncode == 0, res.stderr[-2000:]
    with _conn(ia) as conn, conn.cursor() as cur:  # same Service, same account, a fresh clone
        cur.execute("SHOW TABLES LIKE 'phx_mark'")
        assert cur.fetchall() == ()

    for n in (a, b):
        res = run_phoenix("teardown", n, env=on_cluster)
        assert res.returncode == 0, res.stderr[-2000:]
        assert _leftovers(core, node_settings, storage_local, n) == []


@pytest.mark.parametrize(("fault", "setting", "said"), [
    ("tag", {"PHOENIX_KUBERNETES__DB_IMAGE": "localhost/phoenix-mariadb:no-such-tag"}, "ErrImageNeverPull"),
    ("uid", {"PHOENIX_KUBERNETES__DB_UID": "12345"}, "exited with code"),
])
def test_a_pod_that_cannot_start_fails_the_spawn_with_its_reason_and_leaves_nothing(
        core, on_cluster, node_settings, storage_local, published, names, fault, setting, said):
    """Without the early check both waited the whole readiness timeout and said only 'not ready'."""
    published("local")
    name = names(f"bad-{fault}")
    res = run_phoenix("spawn", name, env={**on_cluster, **setting})
    assert res.returncode == 1
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("phoenix: error: ") and "cannot start" in last and said in last, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    assert _leftovers(core, node_settings, storage_local, name) == []


def test_the_local_runtime_leaves_an_environment_of_the_cluster_alone(
        core, on_cluster, node_settings, storage_local, published, names):
    """Both runtimes share the btrfs pool here; the stack's reaper runs with runtime = "local".
    It took the cluster's clone (no local server, no local account) for a half spawn and
    removed it under the running pod."""
    published("local")
    name = names("shared")
    info = _spawn(name, on_cluster)
    res = run_phoenix("reap")
    assert res.returncode == 0, res.stderr[-2000:]
    res = run_phoenix("teardown", name)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1] == (
        f"phoenix: error: environment {name!r} runs on runtime 'kubernetes', not 'local': "
        "use that runtime for it (PHOENIX_RUNTIME=kubernetes)")
    assert storage_local.exists(image_name(info["id"]))
    with _conn(info) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone()[0] == 1
