"""The runtime contract (tasks/runtime/base.py), one suite run on every runtime: the local
one (mariadbd processes on btrfs images) and the Kubernetes one (the local control plane
and Ceph; the test kubelet reports pods Ready)."""

from __future__ import annotations

import contextlib

import pytest

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
        from tasks.runtime.kubernetes import manifests as m

        settings, storage = request.getfixturevalue("kube_settings"), request.getfixturevalue("storage_rbd")
        request.getfixturevalue("kubelet").serve(m.namespace_for(settings, name))
        runtime = KubernetesRuntime(settings, storage)
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
    runtime.wait_ready(name, timeout=180)
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
    if storage.name == "rbd":
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
