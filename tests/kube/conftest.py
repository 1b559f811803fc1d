"""Fixtures for the `kubernetes` runtime: the local control plane (started — and built
the first time, with progress — when it is not running, so this directory runs alone),
settings pointing at it, the runtime on the RBD backend, and the test kubelet."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def kube_cluster(settings):
    from infra.local import kube

    return kube.up(settings)


@pytest.fixture(scope="session")
def kube_settings(settings, kube_cluster, ceph_cluster):
    k = settings.kubernetes.model_copy(update={"kubeconfig": Path(kube_cluster["kubeconfig"])})
    return settings.model_copy(update={"storage": "rbd", "runtime": "kubernetes", "kubernetes": k})


@pytest.fixture(scope="session")
def k8s(kube_settings):
    """An API client of our own, to read back what the runtime did."""
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(str(kube_settings.kubernetes.kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        yield api


@pytest.fixture(scope="session")
def kubelet(k8s):
    from tests.kube.kubelet import FakeKubelet

    with FakeKubelet(k8s) as kl:
        yield kl
    assert not kl.errors, kl.errors


@pytest.fixture
def kube_runtime(kube_settings, storage_rbd):
    from tasks.runtime.kubernetes import KubernetesRuntime

    with KubernetesRuntime(kube_settings, storage_rbd) as rt:
        yield rt
