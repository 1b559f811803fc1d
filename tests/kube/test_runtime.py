"""The `kubernetes` runtime against the real local control plane and the real Ceph
cluster: what spawn, teardown and reset create and remove is read back from the API
server (our own client), never from Phoenix's bookkeeping."""

from __future__ import annotations

import json
import threading
import time

import pytest
from kubernetes import client

from phoenix.names import env_id, image_name
from tasks import environments as envs
from tasks.runtime.base import ServerFailed
from tasks.runtime.kubernetes import manifests as m
from tasks.runtime.kubernetes import node

pytestmark = pytest.mark.timeout(600)


def _owned(items) -> set[str]:
    return {o.metadata.name for o in items}


def _namespace_objects(api: client.ApiClient, ns: str) -> dict[str, set[str]]:
    core, apps, net = client.CoreV1Api(api), client.AppsV1Api(api), client.NetworkingV1Api(api)
    return {
        "Secret": {s.metadata.name for s in core.list_namespaced_secret(ns).items
                   if s.type != "kubernetes.io/service-account-token"},
        "ConfigMap": _owned(core.list_namespaced_config_map(ns).items) - {"kube-root-ca.crt"},
        "PersistentVolumeClaim": _owned(core.list_namespaced_persistent_volume_claim(ns).items),
        "Service": _owned(core.list_namespaced_service(ns).items),
        "Deployment": _owned(apps.list_namespaced_deployment(ns).items),
        "NetworkPolicy": _owned(net.list_namespaced_network_policy(ns).items),
        "Ingress": _owned(net.list_namespaced_ingress(ns).items),
    }


def _wait(cond, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _gone(fn, *args) -> bool:
    try:
        fn(*args)
    except client.ApiException as exc:
        return exc.status == 404
    return False


@pytest.fixture
def spawned(kube_settings, storage_rbd, kube_runtime, kubelet, published, unique):
    """An environment spawned through the Kubernetes runtime; torn down afterwards."""
    published("rbd")
    name = f"{unique}-feature/KUBE-1"
    eid = env_id(name)
    ns = m.namespace_for(kube_settings, eid)
    kubelet.serve(ns)
    info = envs.spawn(kube_settings, storage_rbd, kube_runtime, name, ttl="2h")
    yield name, eid, ns, info
    envs.teardown(kube_settings, storage_rbd, kube_runtime, name)


def test_spawn_creates_exactly_the_environment_objects(spawned, k8s, kube_settings, storage_rbd):
    name, eid, ns, info = spawned
    core, apps = client.CoreV1Api(k8s), client.AppsV1Api(k8s)
    assert info.state == "running" and info.host == f"mariadb.{ns}.svc.cluster.local" and info.port == 3306

    nso = core.read_namespace(ns)
    assert nso.metadata.labels["app.kubernetes.io/managed-by"] == "phoenix"
    assert nso.metadata.labels["phoenix.io/env"] == eid
    assert nso.metadata.labels["phoenix.io/generation"] == info.generation
    assert nso.metadata.annotations["phoenix.io/expires"] == info.expires_at
    assert _namespace_objects(k8s, ns) == {
        "Secret": {"phoenix-db"}, "ConfigMap": set(), "PersistentVolumeClaim": {"data"},
        "Service": {"mariadb"}, "Deployment": {"mariadb"}, "NetworkPolicy": {"phoenix-db-ingress"},
        "Ingress": set()}

    pv = core.read_persistent_volume(ns)
    assert pv.metadata.labels["phoenix.io/env"] == eid
    csi = pv.spec.csi
    assert csi.driver == "rbd.csi.ceph.com" and csi.volume_handle == image_name(eid)
    assert csi.volume_attributes == {"clusterID": kube_settings.rbd.cluster_id, "pool": kube_settings.rbd.pool,
                                     "staticVolume": "true", "imageFeatures": "layering"}
    assert csi.node_stage_secret_ref.name == kube_settings.kubernetes.node_stage_secret
    assert csi.fs_type == "ext4" and pv.spec.persistent_volume_reclaim_policy == "Retain"
    assert storage_rbd.exists(csi.volume_handle)
    pvc = _wait(lambda: (p := core.read_namespaced_persistent_volume_claim("data", ns)).status.phase == "Bound"
                and p, what="PVC bound")
    assert pvc.spec.volume_name == ns and pvc.spec.storage_class_name == ""
    assert core.read_persistent_volume(ns).status.phase == "Bound"

    dep = apps.read_namespaced_deployment("mariadb", ns)
    assert dep.spec.replicas == 1 and dep.spec.strategy.type == "Recreate"
    c = dep.spec.template.spec.containers[0]
    assert c.image == node.REGISTRY_IMAGE  # db_image "" with ceph-csi volumes: a registry's image
    assert c.image_pull_policy == "IfNotPresent"
    assert "SELECT 1" in " ".join(c.readiness_probe._exec.command)
    assert c.env_from[0].secret_ref.name == "phoenix-db" and c.resources.limits["memory"]
    assert dep.spec.template.spec.volumes[0].persistent_volume_claim.claim_name == "data"

    pol = client.NetworkingV1Api(k8s).read_namespaced_network_policy("phoenix-db-ingress", ns)
    assert [p.to_dict() for p in pol.spec.ingress[0]._from] == [
        {"ip_block": None, "namespace_selector": None,
         "pod_selector": {"match_expressions": None, "match_labels": None}}]
    assert pol.spec.pod_selector.match_labels == {"app.kubernetes.io/name": "mariadb"}


def test_second_spawn_of_the_same_name_changes_nothing(spawned, k8s, kube_settings, storage_rbd, kube_runtime):
    name, eid, ns, info = spawned
    core, apps = client.CoreV1Api(k8s), client.AppsV1Api(k8s)
    _wait(lambda: core.read_persistent_volume(ns).status.phase == "Bound", what="PV bound")
    _wait(lambda: core.read_namespaced_persistent_volume_claim("data", ns).status.phase == "Bound", what="PVC bound")
    _wait(lambda: apps.read_namespaced_deployment("mariadb", ns).status.ready_replicas == 1, what="deployment ready")

    def versions():
        return {"ns": core.read_namespace(ns).metadata.resource_version,
                "secret": core.read_namespaced_secret("phoenix-db", ns).metadata.resource_version,
                "pv": core.read_persistent_volume(ns).metadata.resource_version,
                "pvc": core.read_namespaced_persistent_volume_claim("data", ns).metadata.resource_version,
                "dep": apps.read_namespaced_deployment("mariadb", ns).metadata.generation,
                "svc": core.read_namespaced_service("mariadb", ns).metadata.resource_version}

    # The controllers write status (binding, protection finalizers) on their own schedule; a loaded
    # machine delays them. Compare against a state that held still for 2 s, not against a guess.
    def settled():
        first = versions()
        time.sleep(2)
        return first if versions() == first else None

    before = _wait(settled, what="the controllers' status writes to settle")
    again = envs.spawn(kube_settings, storage_rbd, kube_runtime, name, ttl="2h")
    # the same environment; only its expiry restarted (a re-spawn extends it, in storage metadata)
    assert again.expires_at >= info.expires_at
    assert {**again.as_dict(), "expires_at": ""} == {**info.as_dict(), "expires_at": ""}
    kube_runtime.start(eid, image_name(eid), profile="environment")  # the runtime verb itself, too
    assert versions() == before


def test_secret_holds_the_password_and_nothing_else_does(spawned, k8s, kube_runtime, capfd, caplog):
    name, eid, ns, info = spawned
    password = kube_runtime.credentials(eid).password
    root = kube_runtime.admin(eid).password
    core = client.CoreV1Api(k8s)
    sec = core.read_namespaced_secret("phoenix-db", ns)
    assert set(sec.data) == {"MARIADB_USER", "MARIADB_PASSWORD", "MARIADB_DATABASE", "MARIADB_ROOT_PASSWORD"}
    # Everything else the environment consists of, serialized: no password anywhere.
    everything = [core.read_namespace(ns), core.read_persistent_volume(ns),
                  *core.list_namespaced_config_map(ns).items,
                  *client.AppsV1Api(k8s).list_namespaced_deployment(ns).items,
                  *core.list_namespaced_service(ns).items, *core.list_namespaced_pod(ns).items,
                  *client.NetworkingV1Api(k8s).list_namespaced_network_policy(ns).items]
    blob = json.dumps([k8s.sanitize_for_serialization(o) for o in everything])
    captured = capfd.readouterr()
    for secret in (password, root):
        assert secret not in blob
        assert secret not in captured.out + captured.err
        assert secret not in caplog.text
    assert password not in repr(info) and password not in repr(kube_runtime.credentials(eid))


def test_teardown_removes_the_image_only_after_the_pv_is_gone(spawned, k8s, kube_settings, storage_rbd,
                                                                kube_runtime):
    name, eid, ns, info = spawned
    core = client.CoreV1Api(k8s)
    # Hold the PV with a finalizer of ours: teardown must wait for it, keeping the image.
    core.patch_persistent_volume(ns, {"metadata": {"finalizers": ["test.phoenix.io/hold"]}})
    done = threading.Event()
    errors: list[BaseException] = []

    def run():
        try:
            envs.teardown(kube_settings, storage_rbd, kube_runtime, name)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        done.set()

    threading.Thread(target=run, daemon=True).start()
    _wait(lambda: _gone(core.read_namespace, ns), timeout=120, what="namespace deleted")
    _wait(lambda: core.read_persistent_volume(ns).metadata.deletion_timestamp is not None, what="PV deleting")
    time.sleep(3)
    assert not done.is_set(), "teardown finished while the PV still exists"
    assert storage_rbd.exists(image_name(eid)), "the image was removed while a PV points to it"
    fins = [f for f in core.read_persistent_volume(ns).metadata.finalizers if f != "test.phoenix.io/hold"]
    core.patch_persistent_volume(ns, [{"op": "replace", "path": "/metadata/finalizers", "value": fins}])
    assert done.wait(120) and not errors, errors
    assert _gone(core.read_persistent_volume, ns)
    assert not storage_rbd.exists(image_name(eid))
    assert kube_runtime.get(eid) is None
    assert envs.teardown(kube_settings, storage_rbd, kube_runtime, name) is False  # idempotent


def test_reset_keeps_namespace_and_credentials_with_a_fresh_clone(spawned, k8s, kube_settings, storage_rbd,
                                                                   kube_runtime):
    name, eid, ns, info = spawned
    core = client.CoreV1Api(k8s)
    creds = kube_runtime.credentials(eid)
    ns_uid, pv_uid = core.read_namespace(ns).metadata.uid, core.read_persistent_volume(ns).metadata.uid

    def rbd_id() -> str:  # librbd's id of the image: a re-clone gets a new one
        with storage_rbd._image(image_name(eid)) as img:
            return img.id()

    old_id = rbd_id()
    again = envs.reset(kube_settings, storage_rbd, kube_runtime, name)
    assert again.state == "running"
    assert rbd_id() != old_id
    assert kube_runtime.credentials(eid).password == creds.password
    assert core.read_namespace(ns).metadata.uid == ns_uid
    assert core.read_persistent_volume(ns).metadata.uid != pv_uid
    assert core.read_persistent_volume(ns).spec.csi.volume_handle == image_name(eid)


def test_wait_ready_waits_for_the_kubelet_and_times_out_clearly(kube_runtime, kube_settings, storage_rbd,
                                                                 kubelet, unique):
    name = f"{unique}-ready"
    image = image_name(name)
    ns = m.namespace_for(kube_settings, name)
    storage_rbd.create(image, 64 << 20)
    try:
        kube_runtime.start(name, image, profile="environment")
        t0 = time.monotonic()
        with pytest.raises(ServerFailed, match="not scheduled") as err:
            kube_runtime.wait_ready(name, timeout=3)
        assert 3 <= time.monotonic() - t0 < 10 and "\n" not in str(err.value)
        assert kube_runtime.get(name).state == "starting"
        kubelet.ready = False  # bound, but the probe never passes
        kubelet.serve(ns)
        with pytest.raises(ServerFailed, match="readiness probe not passing"):
            kube_runtime.wait_ready(name, timeout=4)
        kubelet.ready = True
        ep = kube_runtime.wait_ready(name, timeout=30)
        assert ep.state == "running"
        pod = client.CoreV1Api(kube_runtime.api._api).list_namespaced_pod(ns).items[0]
        assert pod.spec.node_name == "phoenix-test-node"
    finally:
        kubelet.ready = True
        kube_runtime.remove(name)
        storage_rbd.remove(image)


def test_breeder_admits_the_worker_and_stop_releases_its_volume(kube_runtime, kube_settings, storage_rbd,
                                                                kubelet, k8s, unique):
    name = f"breeder-{unique}"
    ns = m.namespace_for(kube_settings, name)
    storage_rbd.create(name, 64 << 20)
    kubelet.serve(ns)
    try:
        kube_runtime.start(name, name, profile="restore", labels={"phoenix.io/role": "breeder"})
        kube_runtime.wait_ready(name, timeout=30)
        admin = kube_runtime.admin(name)
        assert admin.user == "root" and admin.host == f"mariadb.{ns}.svc.cluster.local" and admin.password
        pol = client.NetworkingV1Api(k8s).read_namespaced_network_policy("phoenix-db-ingress", ns)
        peers = [p.to_dict() for p in pol.spec.ingress[0]._from]
        assert any((p["pod_selector"] or {}).get("match_labels") == {"app.kubernetes.io/name": "phoenix-worker"}
                   and p["namespace_selector"]["match_labels"] == {
                       "kubernetes.io/metadata.name": kube_settings.kubernetes.worker_namespace}
                   for p in peers)
        dep = client.AppsV1Api(k8s).read_namespaced_deployment("mariadb", ns)
        assert "--innodb-doublewrite=0" in dep.spec.template.spec.containers[0].args
        kube_runtime.stop(name)
        core = client.CoreV1Api(k8s)
        assert not core.list_namespaced_pod(ns).items
        assert _gone(core.read_persistent_volume, ns)  # released: the image may be snapshotted now
        assert kube_runtime.get(name).state == "stopped"
        assert kube_runtime.credentials(name) is not None  # kept for a restart
        kube_runtime.remove(name)
    finally:
        kube_runtime.remove(name)
        storage_rbd.remove(name)
    assert kube_runtime.get(name) is None


def test_list_sees_only_phoenix_namespaces(kube_runtime, k8s, kube_settings, unique):
    core = client.CoreV1Api(k8s)
    foreign = m.namespace_for(kube_settings, f"{unique}-foreign")
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=foreign)))
    try:
        assert all(ep.name != f"{unique}-foreign" for ep in kube_runtime.list())
        assert kube_runtime.get(f"{unique}-foreign") is None
        kube_runtime.remove(f"{unique}-foreign")  # never touches a namespace Phoenix did not create
        assert core.read_namespace(foreign).status.phase == "Active"
    finally:
        core.delete_namespace(foreign)
