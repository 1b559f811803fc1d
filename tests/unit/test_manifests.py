"""Every manifest Phoenix sends, and every one it ships in infra/k8s/, validates with
kubernetes-validate against a current Kubernetes, strictly (unknown fields fail)."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from phoenix.config import load_settings
from tasks.runtime.base import Credentials
from tasks.runtime.kubernetes import manifests as m

K8S = Path(__file__).resolve().parents[2] / "infra" / "k8s"
VERSION = kubernetes_validate.latest_version()
_ROOK = {("ceph.rook.io/v1", "CephBlockPool")}  # a CRD: no schema in kubernetes-validate


def _objects(profile: str, app: bool, **target: str) -> list[dict]:
    s = load_settings(kubernetes={"app_image": "registry.example.com/shop:1" if app else "",
                                  "app_env": {"MODE": "integration"}})
    t = m.Target(name="feature-x", image="env-feature-x", namespace=m.namespace_for(s, "feature-x"),
                 profile=profile, size_bytes=3 << 30, labels={"phoenix.io/env": "feature-x"},
                 annotations={"phoenix.io/expires": "2026-11-25T20:00:00+00:00"}, **target)
    return m.all_objects(s, t, Credentials.generate("app"), "root-pw", env_id="feature-x")


_LOCAL = {"volume": "local", "host_path": "/srv/phoenix/images/env-feature-x", "node": "node-1",
          "db_image": "localhost/phoenix-mariadb:10.11.18"}


def test_a_current_kubernetes_version_is_used():
    major, minor = (int(x) for x in VERSION.split(".")[:2])
    assert (major, minor) >= (1, 30)


def test_local_volumes_are_a_local_pv_on_the_node_with_the_image_built_there():
    objs = {o["kind"]: o for o in _objects("environment", False, **_LOCAL)}
    pv, pvc = objs["PersistentVolume"]["spec"], objs["PersistentVolumeClaim"]["spec"]
    assert "csi" not in pv and pv["local"] == {"path": _LOCAL["host_path"]}
    term = pv["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
    assert term == {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-1"]}
    assert pv["storageClassName"] == pvc["storageClassName"] == m.LOCAL_CLASS
    c = objs["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert (c["image"], c["imagePullPolicy"]) == (_LOCAL["db_image"], "Never")  # no registry to pull from
    csi = {o["kind"]: o for o in _objects("environment", False)}
    assert csi["PersistentVolume"]["spec"]["csi"]["volumeHandle"] == "env-feature-x"
    assert csi["Deployment"]["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize("profile,app,target", [("environment", False, {}), ("environment", True, {}),
                                                ("restore", False, {}), ("environment", False, _LOCAL)])
def test_runtime_manifests_validate_strictly(profile, app, target):
    objs = _objects(profile, app, **target)
    kinds = [o["kind"] for o in objs]
    assert ("Ingress" in kinds) == app
    for obj in objs:
        kubernetes_validate.validate(obj, VERSION, strict=True)


def test_a_typo_would_fail_validation():
    dep = next(o for o in _objects("environment", False) if o["kind"] == "Deployment")
    dep["spec"]["replica"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(dep, VERSION, strict=True)


def test_app_gets_its_ingress_and_the_database_from_the_secret():
    objs = {(o["kind"], o["metadata"]["name"]): o for o in _objects("environment", True)}
    ing = objs[("Ingress", "app")]
    assert ing["spec"]["rules"][0]["host"] == "feature-x.phoenix.localhost"
    env = {e["name"]: e for e in objs[("Deployment", "app")]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["DB_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "phoenix-db", "key": "MARIADB_PASSWORD"}
    assert env["DB_HOST"]["value"] == "mariadb" and env["MODE"]["value"] == "integration"


@pytest.mark.parametrize("path", sorted(K8S.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_manifests_validate_strictly(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in _ROOK:
            assert doc["spec"]["replicated"]["size"] >= 1 and doc["metadata"]["namespace"] == "rook-ceph"
            continue
        kubernetes_validate.validate(doc, VERSION, strict=True)


def test_prefect_yaml_has_a_kubernetes_variant_of_every_deployment():
    spec = yaml.safe_load((K8S.parent.parent / "prefect.yaml").read_text())
    deps = {d["name"]: d for d in spec["deployments"]}
    local = [d for d in deps.values() if d["work_pool"]["name"] == "phoenix"]
    assert {d["name"] for d in local} == {"breed", "spawn", "teardown", "reset", "reap"}
    for d in local:
        twin = deps[f"{d['name']}-k8s"]
        assert twin["entrypoint"] == d["entrypoint"] and twin["work_pool"]["name"] == "phoenix-k8s"
        env = twin["work_pool"]["job_variables"]["env"]
        assert env["PHOENIX_RUNTIME"] == "kubernetes" and env["PHOENIX_STORAGE"] == "rbd"
        assert twin["work_pool"]["job_variables"]["service_account_name"] == "phoenix-worker"
