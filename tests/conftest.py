"""Shared fixtures: the real local stack, started through the project's own code.

The test suite runs in its own state directory (`PHOENIX_HOME`, set by `make test`
to `.phoenix-test`) with its own ports, so it never touches the demo's stack.
Fixtures call the stack parts' idempotent `up()`: if `make test` already started a
part, it is reused; if a test file is run alone, the part is started here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Defaults for a test run started without `make test` (e.g. `pytest tests/storage`).
os.environ.setdefault("PHOENIX_HOME", str(REPO / ".phoenix-test"))
os.environ.setdefault("PHOENIX_PREFECT__PORT", "4211")
os.environ.setdefault("PHOENIX_RBD__MON_PORT", "6799")
os.environ.setdefault("PHOENIX_RBD__POOL", "phoenix-test")
os.environ.setdefault("PHOENIX_KUBERNETES__API_PORT", "6453")
os.environ.setdefault("PHOENIX_KUBERNETES__ETCD_PORT", "2389")
os.environ.setdefault("PHOENIX_ANON_KEY", "test-key-not-secret-0123456789abcdef")
os.environ.setdefault("PHOENIX_IMAGE_SIZE", "2G")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _point_prefect_at_the_test_server() -> None:
    """Before any test module imports prefect: it reads its settings once, at import,
    so a later change of PREFECT_API_URL would leave in-process clients on an
    ephemeral server of their own while subprocesses use the test server."""
    from infra.local.prefect import client_env
    from phoenix.config import load_settings

    for key, value in client_env(load_settings()).items():
        os.environ.setdefault(key, value)


_point_prefect_at_the_test_server()


@pytest.fixture(scope="session")
def settings():
    from phoenix.config import get_settings

    get_settings.cache_clear()
    return get_settings()


@pytest.fixture(scope="session", autouse=True)
def prefect_server(settings):
    """Flows report to the test stack's Prefect server (started here if needed)."""
    from infra.local import prefect as local_prefect

    info = local_prefect.up(settings)
    for key, value in local_prefect.client_env(settings).items():
        os.environ[key] = value
    return info


@pytest.fixture(scope="session")
def btrfs_pool(settings):
    from infra.local import btrfs

    return btrfs.up(settings)


@pytest.fixture(scope="session")
def ceph_cluster(settings):
    from infra.local import ceph

    return ceph.up(settings)


@pytest.fixture(scope="session")
def storage_local(settings, btrfs_pool):
    from tasks.storage.local import LocalStorage

    with LocalStorage(settings.btrfs_mount) as st:
        yield st


@pytest.fixture(scope="session")
def storage_rbd(settings, ceph_cluster):
    from tasks.storage import open_storage

    with open_storage(settings.model_copy(update={"storage": "rbd"})) as st:
        yield st


@pytest.fixture(params=["local", "rbd"])
def backend(request):
    """Name of a storage backend; tests that run on both are parametrized with it."""
    return request.param


@pytest.fixture
def storage(request, backend):
    return request.getfixturevalue(f"storage_{backend}")


@pytest.fixture
def unique(request):
    """A short name prefix unique to this test, valid as an image name."""
    import hashlib

    return "t" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:10]


@pytest.fixture(scope="session")
def shop_dump(tmp_path_factory):
    """A generated shop dump at scale 1 (about 20k rows), shared by the session."""
    from tests.generator.fixtures import make_shop_dump

    return make_shop_dump(tmp_path_factory.mktemp("dumps") / "shop.sql.zst")


@pytest.fixture
def mariadb(tmp_path):
    """A plain throwaway MariaDB server (restore profile) in a temp directory."""
    from tasks.runtime.mariadb import MariaDBServer, free_port

    server = MariaDBServer(tmp_path / "data", tmp_path / "run", free_port(), "restore")
    server.initialize()
    server.start()
    server.wait_ready()
    yield server
    server.stop()


def run_phoenix(*args: str, backend: str = "local", env: dict | None = None, timeout: float = 600):
    """The real CLI in a subprocess, against the test stack, on one storage backend."""
    import subprocess
    import tempfile

    # Files, not pipes: a killed CLI's children (servers) must not keep us waiting for EOF.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.run([str(REPO / ".venv" / "bin" / "phoenix"), *args], stdout=out, stderr=err,
                              timeout=timeout, env={**os.environ, "PHOENIX_STORAGE": backend, **(env or {})}, cwd=REPO)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())


@pytest.fixture(scope="session")
def published(settings, shop_dump, btrfs_pool, ceph_cluster):
    """Makes sure each backend has a published golden bred from the shop dump; returns
    a function backend -> latest generation id."""
    from tasks import catalog
    from tasks.storage import open_storage

    def latest(backend: str) -> str:
        with open_storage(settings.model_copy(update={"storage": backend})) as st:
            gen = catalog.latest(st)
        if gen is None:
            res = run_phoenix("breed", "--source", str(shop_dump), backend=backend)
            assert res.returncode == 0, res.stderr[-2000:]
            with open_storage(settings.model_copy(update={"storage": backend})) as st:
                gen = catalog.latest(st)
        return gen

    return latest
