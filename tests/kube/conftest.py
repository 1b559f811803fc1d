"""Fixtures for the `kubernetes` runtime: the local cluster (started — and built the first
time, with progress — when it is not running, so this directory runs alone); settings for
its real node (`node_settings`: btrfs clones mounted here, `local` PVs, the image built here)
and for ceph-csi volumes (`kube_settings`: the RBD backend; no ceph-csi here, so the test
kubelet plays the node for them, one test module at a time)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def kube_cluster(settings):
    from infra.local import kube

    return kube.up(settings)


@pytest.fixture(scope="session")
def kube_settings(settings, kube_cluster, ceph_cluster):
    k = settings.kubernetes.model_copy(update={"kubeconfig": Path(kube_cluster["kubeconfig"]), "volumes": "csi"})
    return settings.model_copy(update={"storage": "rbd", "runtime": "kubernetes", "kubernetes": k})


@pytest.fixture(scope="session")
def node_settings(settings, kube_cluster, btrfs_pool):
    """The defaults a user of the local cluster gets: volumes and image derived from it."""
    k = settings.kubernetes.model_copy(update={"kubeconfig": Path(kube_cluster["kubeconfig"])})
    return settings.model_copy(update={"storage": "local", "runtime": "kubernetes", "kubernetes": k})


@pytest.fixture(scope="session")
def k8s(kube_settings):
    """An API client of our own, to read back what the runtime did."""
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(str(kube_settings.kubernetes.kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        yield api


@pytest.fixture(scope="session")
def admin(kube_cluster):
    """An admin's API client of the local cluster (tests read back what happened)."""
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(kube_cluster["kubeconfig"], client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        yield api


@pytest.fixture(scope="session")
def core(admin):
    from kubernetes import client

    return client.CoreV1Api(admin)


@pytest.fixture(scope="module")
def kubelet(k8s):
    """Module-scoped: while it plays, the real node is tainted, so tests of the real node
    sit in other modules."""
    from tests.kube.kubelet import FakeKubelet

    with FakeKubelet(k8s) as kl:
        yield kl
    assert not kl.errors, kl.errors


@pytest.fixture
def kube_runtime(kube_settings, storage_rbd):
    from tasks.runtime.kubernetes import KubernetesRuntime

    with KubernetesRuntime(kube_settings, storage_rbd) as rt:
        yield rt
