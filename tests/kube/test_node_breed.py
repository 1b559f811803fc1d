"""The phoenix cycle with its breeder on the local cluster's real node (issue 15, item 4):
`breed` with `runtime = "kubernetes"` starts the breeder pod with the restore profile,
streams the restore from here to its Service, anonymizes and gates through it, stops it
slowly in the pod and snapshots its volume; the golden serves the same data as one bred by
the local runtime from the same dump and key."""

from __future__ import annotations

import json
import threading

import pytest

from infra.local import kube_node
from tests.conftest import run_phoenix
from tests.kube.test_node_envs import _checksums, _spawn, names, on_cluster  # noqa: F401 (fixtures)

pytestmark = pytest.mark.timeout(900)


class _Breeders(threading.Thread):
    """Watches the cluster for breeder pods while a breed runs: the nodes they ran on."""

    def __init__(self, core) -> None:
        super().__init__(daemon=True)
        self.core, self.nodes, self.done = core, set(), threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.5):
            for ns in breeders(self.core):
                pods = self.core.list_namespaced_pod(ns).items
                self.nodes |= {(p.spec.node_name, p.status.phase) for p in pods}


def breeders(core) -> list[str]:
    return [n.metadata.name for n in core.list_namespace(label_selector="phoenix.io/role=breeder").items]


def test_breed_on_the_node_publishes_a_golden_equal_to_a_local_breed(
        core, on_cluster, node_settings, storage_local, published, shop_dump, names):  # noqa: F811
    local_gen = published("local")
    reference = _checksums(_spawn(names("ref", {}), {}, "--generation", local_gen))

    watch = _Breeders(core)
    watch.start()
    try:
        res = run_phoenix("breed", "--source", str(shop_dump), "--mode", "full", "--json", env=on_cluster)
    finally:
        watch.done.set()
        watch.join()
    assert res.returncode == 0, res.stderr[-2000:]
    gen = json.loads(res.stdout.strip().splitlines()[-1])["golden"]
    assert gen != local_gen
    assert (kube_node.NODE, "Running") in watch.nodes  # the breeder ran as a pod on the real node
    assert breeders(core) == []  # the breeder's namespace is gone with it

    info = _spawn(names("bred"), on_cluster, "--generation", gen)
    assert info["generation"] == gen
    assert _checksums(info) == reference  # the same rules, key and dump: the same golden
