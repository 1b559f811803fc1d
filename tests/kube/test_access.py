"""Reaching the API server: an unreachable one is a clear one-line error within 10 s;
the worker's RBAC from infra/k8s/ is enough to run environments and no more."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from phoenix.names import image_name
from tasks.runtime.kubernetes import KubernetesRuntime
from tasks.runtime.kubernetes import manifests as m
from tasks.runtime.kubernetes.api import Api, KubernetesUnreachable
from tasks.runtime.mariadb import free_port
from tests.conftest import REPO, run_phoenix

K8S = REPO / "infra" / "k8s"


def _kubeconfig(tmp_path: Path, source: Path, server: str | None = None, token: str | None = None) -> Path:
    cfg = yaml.safe_load(source.read_text())
    if server:
        cfg["clusters"][0]["cluster"]["server"] = server
    if token:
        cfg["users"][0]["user"] = {"token": token}
    out = tmp_path / "kubeconfig"
    out.write_text(yaml.safe_dump(cfg))
    return out


@pytest.mark.parametrize("server", ["refused", "black-holed"])
def test_api_server_down_is_a_clear_error_within_10_s(server, kube_settings, storage_rbd, tmp_path):
    url = f"https://127.0.0.1:{free_port()}" if server == "refused" else "https://10.255.255.1:6443"
    bad = _kubeconfig(tmp_path, kube_settings.kubernetes.kubeconfig, server=url)
    s = kube_settings.model_copy(update={"kubernetes": kube_settings.kubernetes.model_copy(
        update={"kubeconfig": bad})})
    t0 = time.monotonic()
    with pytest.raises(KubernetesUnreachable) as err:
        KubernetesRuntime(s, storage_rbd)
    assert time.monotonic() - t0 < 10
    msg = str(err.value)
    assert url in msg and "unreachable" in msg and "\n" not in msg
    assert "token" not in msg.lower()


def test_cli_with_the_api_server_down_says_so_in_one_line(kube_settings, tmp_path):
    bad = _kubeconfig(tmp_path, kube_settings.kubernetes.kubeconfig, server=f"https://127.0.0.1:{free_port()}")
    t0 = time.monotonic()
    res = run_phoenix("ls", backend="rbd", env={"PHOENIX_RUNTIME": "kubernetes",
                                                 "PHOENIX_KUBERNETES__KUBECONFIG": str(bad)})
    assert time.monotonic() - t0 < 30
    assert res.returncode == 6, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Kubernetes API at https://127.0.0.1:" in lines[0] and "unreachable" in lines[0]


@pytest.fixture(scope="module")
def worker_kubeconfig(kube_settings, tmp_path_factory):
    """The worker's ServiceAccount from infra/k8s/, as a kubeconfig with its token."""
    with Api(kube_settings) as admin:
        for path in ("worker.yaml", "rbac.yaml"):
            for doc in yaml.safe_load_all((K8S / path).read_text()):
                if doc and doc["kind"] != "Deployment":  # no kubelet here to run the worker itself
                    admin.apply(doc)
        core = client.CoreV1Api(admin._api)
        deadline = time.monotonic() + 60
        token = None
        while token is None and time.monotonic() < deadline:
            for sec in core.list_namespaced_secret("phoenix").items:
                if sec.type == "kubernetes.io/service-account-token" and \
                        (sec.metadata.annotations or {}).get("kubernetes.io/service-account.name") == "phoenix-worker":
                    token = base64.b64decode(sec.data["token"]).decode()
            time.sleep(0.5)
    assert token, "no token for the phoenix-worker ServiceAccount"
    return _kubeconfig(tmp_path_factory.mktemp("worker"), kube_settings.kubernetes.kubeconfig, token=token)


def _can(api: client.ApiClient, verb: str, resource: str, namespace: str = "", group: str = "",
         subresource: str = "") -> bool:
    review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
        resource_attributes=client.V1ResourceAttributes(verb=verb, resource=resource, namespace=namespace,
                                                        group=group, subresource=subresource)))
    return client.AuthorizationV1Api(api).create_self_subject_access_review(review).status.allowed


def test_worker_rbac_runs_an_environment_and_allows_no_more(worker_kubeconfig, kube_settings, storage_rbd,
                                                             kubelet, unique):
    s = kube_settings.model_copy(update={"kubernetes": kube_settings.kubernetes.model_copy(
        update={"kubeconfig": worker_kubeconfig})})
    name = f"{unique}-rbac"
    storage_rbd.create(image_name(name), 64 << 20)
    kubelet.serve(m.namespace_for(s, name))
    try:
        with KubernetesRuntime(s, storage_rbd) as rt:
            rt.start(name, image_name(name), profile="environment")
            assert rt.wait_ready(name, timeout=30).state == "running"
            assert rt.credentials(name) is not None
            assert any(ep.name == name for ep in rt.list())
            rt.stop(name)
            rt.remove(name)
            assert rt.get(name) is None
            api = rt.api._api
            assert _can(api, "create", "namespaces") and _can(api, "delete", "persistentvolumes")
            for verb, res, ns, group, sub in [("create", "clusterrolebindings", "", "rbac.authorization.k8s.io", ""),
                                              ("create", "rolebindings", "default", "rbac.authorization.k8s.io", ""),
                                              ("delete", "nodes", "", "", ""),
                                              ("create", "pods", "default", "", "exec"),
                                              ("create", "pods", "default", "", ""),
                                              ("get", "configmaps", "kube-system", "", ""),
                                              ("update", "secrets", "kube-system", "", "")]:
                assert not _can(api, verb, res, ns, group, sub), (verb, res, sub)
    finally:
        storage_rbd.remove(image_name(name))


def test_csi_volumes_on_btrfs_storage_are_refused_in_one_line():
    res = run_phoenix("ls", backend="local", env={"PHOENIX_RUNTIME": "kubernetes", "PHOENIX_KUBERNETES__VOLUMES": "csi"})
    assert res.returncode == 2
    assert res.stderr.strip() == ('phoenix: error: runtime \'kubernetes\' with kubernetes.volumes = "csi" needs '
                                  'storage = "rbd": ceph-csi maps RBD images; on a node of this host set '
                                  'kubernetes.volumes = "local"')
