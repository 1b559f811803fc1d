"""The runtime contract (tasks/runtime/base.py), one suite run on every runtime: the local
one (mariadbd processes on btrfs images) and the Kubernetes one on the local cluster's real
node (pods run by its kubelet from the image built here, on btrfs clones as `local` PVs)."""

from __future__ import annotations

import contextlib

import pymysql
import pytest

from phoenix.db import connect
from phoenix.errors import ServerNotFound
from tasks.runtime.base import Credentials

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(params=["local", "kubernetes"])
def rt(request, unique):
    """(runtime, storage, name of a fresh image) for each runtime; everything removed after."""
    name = f"{unique}-{request.param[:4]}"
    if request.param == "local":
        from tasks.runtime.local import LocalRuntime

        settings, storage = request.getfixturevalue("settings"), request.getfixturevalue("storage_local")
        runtime = LocalRuntime(settings, storage)
    else:
        from tasks.runtime.kubernetes import KubernetesRuntime

        settings, storage = request.getfixturevalue("node_settings"), request.getfixturevalue("storage_local")
        runtime = KubernetesRuntime(settings, storage)
        assert runtime.volumes == "local"  # derived from the cluster: no ceph-csi here
    storage.create(name, 1 << 30)
    try:
        yield runtime, storage, name
    finally:
        with contextlib.suppress(Exception):
            runtime.remove(name)
        storage.detach(name)
        storage.remove(name)
        runtime.close()


def test_start_is_idempotent_and_the_server_is_found_again(rt):
    runtime, _storage, name = rt
    first = runtime.start(name, name, profile="environment", labels={"phoenix.io/env": name})
    again = runtime.start(name, name, profile="environment", labels={"phoenix.io/env": name})
    assert (first.name, first.image, first.profile) == (again.name, again.image, again.profile) == \
        (name, name, "environment")
    ready = runtime.wait_ready(name, timeout=180)
    assert ready.state == "running" and ready.port > 0
    assert name in {e.name for e in runtime.list()}
    assert runtime.get(name).labels.get("phoenix.io/env") == name


def _ask(ep, creds) -> str:
    """A query as the environment's own account, at the address the runtime returned."""
    with pymysql.connect(host=ep.host, port=ep.port, user=creds.user, password=creds.password,
                         database=creds.database, connect_timeout=10) as conn, conn.cursor() as cur:
        cur.execute("SELECT CURRENT_USER()")
        return cur.fetchone()[0]


def test_the_endpoint_answers_as_the_environments_account_and_admin_has_all_rights(rt):
    runtime, _storage, name = rt
    creds = Credentials.generate("app")
    runtime.start(name, name, profile="environment", credentials=creds)
    ep = runtime.wait_ready(name, timeout=180)
    assert _ask(ep, creds).startswith(f"{creds.user}@")
    with connect(runtime.admin(name), None) as conn, conn.cursor() as cur:
        cur.execute("SHOW GRANTS")
        assert any("ALL PRIVILEGES ON *.*" in row[0] for row in cur.fetchall())
    with pytest.raises(pymysql.err.OperationalError):
        _ask(ep, Credentials(creds.user, "not-the-password", creds.database))


def test_credentials_survive_stop_and_a_start_without_them(rt):
    runtime, _storage, name = rt
    creds = Credentials.generate("app")
    runtime.start(name, name, profile="environment", credentials=creds)
    runtime.wait_ready(name, timeout=180)
    assert runtime.credentials(name) == creds
    runtime.stop(name)
    runtime.stop(name)  # idempotent
    assert runtime.get(name).state == "stopped" and runtime.credentials(name) == creds
    runtime.start(name, name, profile="environment")
    assert _ask(runtime.wait_ready(name, timeout=180), creds).startswith(f"{creds.user}@")
    assert runtime.credentials(name) == creds


def test_remove_forgets_the_server_and_keeps_the_image(rt):
    runtime, storage, name = rt
    runtime.start(name, name, profile="environment", credentials=Credentials.generate("app"))
    runtime.wait_ready(name, timeout=180)
    runtime.remove(name)
    runtime.remove(name)  # idempotent
    assert runtime.get(name) is None and name not in {e.name for e in runtime.list()}
    assert runtime.credentials(name) is None
    assert storage.exists(name)
    if storage.name == "rbd":  # a btrfs subvolume is always "attached"
        assert storage.attached(name) is None  # released: the image may be snapshotted or removed


def test_names_nobody_started(rt):
    runtime, _storage, name = rt
    ghost = f"{name}-ghost"
    assert runtime.get(ghost) is None
    runtime.stop(ghost)
    runtime.remove(ghost)
    for verb in (runtime.wait_ready, runtime.admin, runtime.seal):
        with pytest.raises(ServerNotFound):
            verb(ghost)
