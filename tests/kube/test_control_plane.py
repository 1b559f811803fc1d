"""The local Kubernetes control plane part of the stack: built once and cached, started
on a throwaway state directory, up twice harmless, down stops exactly its daemons, and
the kubeconfig it writes is accepted by the official client."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import stat

import pytest
from kubernetes import client, config

from infra.local import kube
from phoenix.config import load_settings
from phoenix.proc import pid_alive

pytestmark = pytest.mark.timeout(1800)  # the first run on a machine builds the binaries


def _quiet_ports(n: int) -> int:
    """The first of n consecutive ports free to bind, below the kernel's ephemeral range
    (32768+): a free_port() there was once taken by some outgoing connection as the etcd
    peer port (etcd_port + 1) between the check and etcd's bind."""
    rng = random.Random()
    while True:
        first = rng.randrange(20000, 32000 - n)
        try:
            with contextlib.ExitStack() as held:
                for port in range(first, first + n):
                    held.enter_context(socket.socket()).bind(("127.0.0.1", port))
            return first
        except OSError:
            continue


@pytest.fixture
def throwaway(tmp_path_factory):
    home = tmp_path_factory.mktemp("kube")
    first = _quiet_ports(3)  # etcd, its peer port, the API
    s = load_settings(home=home, kubernetes={"etcd_port": first, "api_port": first + 2})
    yield s
    kube.down(s)


def test_binaries_are_cached_outside_the_repository():
    bin_dir = kube.binaries()
    assert (bin_dir / ".complete").exists()
    for name in ("kube-apiserver", "kube-controller-manager"):
        assert os.access(bin_dir / name, os.X_OK)
    assert not str(bin_dir.resolve()).startswith(str(kube._BUILD.parent.parent.parent.resolve()))
    assert kube.binaries() == bin_dir  # the second call finds the cache


def test_up_twice_serves_the_api_and_down_stops_exactly_it(throwaway):
    info = kube.up(throwaway, node=False)  # the node is host-wide: the session has it
    assert info["healthy"] and set(info["pids"]) == {"etcd", "kube-apiserver", "kube-controller-manager"}
    assert kube.up(throwaway, node=False)["pids"] == info["pids"]
    path = info["kubeconfig"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600  # it holds the admin token
    cfg = client.Configuration()
    config.load_kube_config(path, client_configuration=cfg)
    with client.ApiClient(cfg) as api:  # TLS verified against the server's own certificate
        names = {n.metadata.name for n in client.CoreV1Api(api).list_namespace().items}
    assert {"default", "kube-system"} <= names
    kube.down(throwaway)
    assert kube.status(throwaway) is None
    assert not any(pid_alive(p) for p in info["pids"].values())
