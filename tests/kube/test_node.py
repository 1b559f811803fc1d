"""The local cluster's real node: a plain MariaDB pod from the image built here runs
under the real scheduler and kubelet (containerd, CNI bridge, kube-proxy) and answers
from the host through its pod IP and a ClusterIP Service; and `down` leaves the host
as it found it (iptables, sysctls, mounts, links)."""

from __future__ import annotations

import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pymysql
import pytest
from kubernetes import client

from infra.local import images, kube, kube_host, kube_node
from tests.kube.kubelet import TAINT

pytestmark = pytest.mark.timeout(1800)  # the first run on a machine builds binaries and images
_USER, _PASSWORD = "phx", "not-secret-node-test"
_INIT_SQL = (f"CREATE USER IF NOT EXISTS '{_USER}'@'%' IDENTIFIED BY '{_PASSWORD}';\n"
             f"GRANT ALL ON *.* TO '{_USER}'@'%';\n")


def _wait(cond, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _namespace(core, ns: str) -> None:
    """A namespace whose default service account has its token (pods are refused before)."""
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))

    def token():
        try:
            return core.read_namespaced_service_account("default", ns).secrets
        except client.ApiException as exc:
            if exc.status == 404:
                return None
            raise
    _wait(token, 60, f"the token of {ns}'s default service account")


def _volume(core, name: str, path: str) -> None:
    """A `local` PV on the node (the shape a clone gets here) and its claim."""
    core.create_persistent_volume(client.V1PersistentVolume(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PersistentVolumeSpec(
            capacity={"storage": "1Gi"}, access_modes=["ReadWriteOnce"], storage_class_name="phoenix-local",
            persistent_volume_reclaim_policy="Retain", local=client.V1LocalVolumeSource(path=path),
            node_affinity=client.V1VolumeNodeAffinity(required=client.V1NodeSelector(node_selector_terms=[
                client.V1NodeSelectorTerm(match_expressions=[client.V1NodeSelectorRequirement(
                    key="kubernetes.io/hostname", operator="In", values=[kube_node.NODE])])])))))
    core.create_namespaced_persistent_volume_claim(name, client.V1PersistentVolumeClaim(
        metadata=client.V1ObjectMeta(name="data"),
        spec=client.V1PersistentVolumeClaimSpec(access_modes=["ReadWriteOnce"], storage_class_name="phoenix-local",
                                                volume_name=name, resources={"requests": {"storage": "1Gi"}})))


def _pod(ref: str) -> client.V1Pod:
    ready = client.V1Probe(period_seconds=1, failure_threshold=3, _exec=client.V1ExecAction(
        command=["mariadb", "-h127.0.0.1", f"-u{_USER}", f"-p{_PASSWORD}", "-e", "select 1"]))
    mount = [client.V1VolumeMount(name="data", mount_path="/var/lib/mysql"),
             client.V1VolumeMount(name="init", mount_path="/init")]
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name="mariadb", labels={"app": "mariadb"}),
        spec=client.V1PodSpec(
            # A test module's fake kubelet taints the real node while it plays (tests/kube/kubelet.py).
            tolerations=[client.V1Toleration(key=TAINT.key, operator="Exists", effect="NoSchedule")],
            termination_grace_period_seconds=5,
            init_containers=[client.V1Container(
                name="install-db", image=ref, image_pull_policy="Never", volume_mounts=mount,
                command=["sh", "-c", "[ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql "
                                     "--datadir=/var/lib/mysql --skip-test-db >/dev/null"])],
            containers=[client.V1Container(
                name="mariadb", image=ref, image_pull_policy="Never", volume_mounts=mount, readiness_probe=ready,
                command=["mariadbd", "--user=mysql", "--datadir=/var/lib/mysql", "--bind-address=0.0.0.0",
                         "--socket=/tmp/mysqld.sock", "--pid-file=/tmp/mysqld.pid", "--skip-name-resolve",
                         "--init-file=/init/init.sql"])],
            volumes=[client.V1Volume(name="data", persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(
                         claim_name="data")),
                     client.V1Volume(name="init", config_map=client.V1ConfigMapVolumeSource(name="init"))]))


def _query(host: str) -> int:
    with pymysql.connect(host=host, port=3306, user=_USER, password=_PASSWORD, connect_timeout=5) as conn:
        with conn.cursor() as cur:
            cur.execute("select 1")
            return cur.fetchone()[0]


def _run_mariadb(core, ns: str, datadir) -> client.V1Pod:
    """The pod Ready by the kubelet's own probe; returns it."""
    os.chown(datadir, images.MYSQL_UID, images.MYSQL_GID)
    _namespace(core, ns)
    _volume(core, ns, str(datadir))
    core.create_namespaced_config_map(ns, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="init"), data={"init.sql": _INIT_SQL}))
    ref = images.mariadb_ref(images.ensure(kube.binaries(lambda m: None)))
    core.create_namespaced_pod(ns, _pod(ref))

    def ready():
        pod = core.read_namespaced_pod("mariadb", ns)
        ok = any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))
        return pod if ok else None
    return _wait(ready, 180, f"pod {ns}/mariadb Ready")


def _cleanup(core, ns: str) -> None:
    core.delete_namespace(ns)
    core.delete_persistent_volume(ns)
    _wait(lambda: not core.list_namespaced_pod(ns).items, 120, f"the pods of {ns} deleted")


def test_mariadb_pod_runs_on_the_real_node_and_answers_the_host(core, kube_cluster, tmp_path):
    assert kube_cluster["node"] == {**kube_cluster["node"], "name": kube_node.NODE, "ready": True}
    assert set(kube_cluster["parts"]) >= {"kubelet", "containerd", "kube-scheduler", "kube-proxy", "etcd"}
    ns = f"node-test-{uuid.uuid4().hex[:8]}"
    datadir = tmp_path / "datadir"
    datadir.mkdir()
    try:
        pod = _run_mariadb(core, ns, datadir)
        assert pod.spec.node_name == kube_node.NODE  # bound by the real scheduler
        assert pod.status.pod_ip.startswith("10.244.0.")
        assert _query(pod.status.pod_ip) == 1
        core.create_namespaced_service(ns, client.V1Service(
            metadata=client.V1ObjectMeta(name="mariadb"),
            spec=client.V1ServiceSpec(selector={"app": "mariadb"}, ports=[client.V1ServicePort(port=3306)])))
        ip = core.read_namespaced_service("mariadb", ns).spec.cluster_ip

        def through_service():
            try:
                return _query(ip) == 1
            except pymysql.err.OperationalError:
                return False  # kube-proxy has not written the rules yet
        _wait(through_service, 60, f"a query through the ClusterIP {ip}")
        owners = {(st.st_uid, st.st_gid) for st in (p.stat() for p in (datadir / "mysql").iterdir())}
        assert owners == {(images.MYSQL_UID, images.MYSQL_GID)}
    finally:
        _cleanup(core, ns)


def test_phoenix_image_runs_the_cli_with_its_virtualenv(core, kube_cluster):
    """The Phoenix image of this checkout (its installed virtualenv, the Ceph bindings)
    runs as a pod on the node: the CLI starts and its native dependencies import."""
    refs = images.ensure(kube.binaries(lambda m: None), app=True)
    kube_node.import_images(Path(kube_cluster["log_dir"]), refs)
    ns = f"node-app-{uuid.uuid4().hex[:8]}"
    _namespace(core, ns)
    try:
        core.create_namespaced_pod(ns, client.V1Pod(
            metadata=client.V1ObjectMeta(name="phoenix"),
            spec=client.V1PodSpec(restart_policy="Never", tolerations=[
                client.V1Toleration(key=TAINT.key, operator="Exists", effect="NoSchedule")],
                containers=[client.V1Container(
                    name="phoenix", image=images.app_ref(refs), image_pull_policy="Never",
                    command=["sh", "-c", "python3 -c 'import rados, rbd, ahocorasick_rs, phoenix.cli' && phoenix --help"])])))
        phase = _wait(lambda: core.read_namespaced_pod("phoenix", ns).status.phase in ("Succeeded", "Failed")
                      and core.read_namespaced_pod("phoenix", ns).status.phase, 180, "the Phoenix pod to finish")
        log = core.read_namespaced_pod_log("phoenix", ns)
        assert phase == "Succeeded", log
        assert "stack" in log and "Usage" in log
    finally:
        core.delete_namespace(ns)
        _wait(lambda: not core.list_namespaced_pod(ns).items, 120, f"the pods of {ns} deleted")


# --- down restores the host --------------------------------------------------------------

def _iptables() -> dict[str, str]:
    out = {}
    for cmd in ("iptables-save", "ip6tables-save"):
        text = subprocess.run([cmd], capture_output=True, text=True, check=True).stdout
        text = re.sub(r"^#.*\n", "", text, flags=re.M)  # "Generated by … on <date>"
        out[cmd] = re.sub(r"\[\d+:\d+\]", "", text)  # packet counters
    return out


_NODE_FS = ("overlay", "nsfs", "tmpfs", "shm", "proc", "sysfs", "cgroup", "mqueue", "devpts")
_NODE_PATHS = ("/run/containerd", "/var/lib/kubelet", "/run/netns", "/var/lib/containers", "/var/lib/cni")


def _node_mount(line: str, home) -> bool:
    """A mount the node could make: its kinds (container rootfs, netns, secrets, shm, a
    container's proc/sys/cgroup) or anything under its paths. Other stacks on this shared
    machine mount and unmount their images (ext4, btrfs, fuse) meanwhile: not compared."""
    _, point, fstype = line.split()[:3]
    return fstype in _NODE_FS or point.startswith((str(home), *_NODE_PATHS))


def _host(home) -> dict:
    """What the node may change."""
    with open("/proc/self/mounts") as f:
        mounts = sorted(ln for ln in f if _node_mount(ln, home))
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    sysctls = {n: kube_host._sysctl_path(n).read_text() for n in kube_host.SYSCTLS}
    dirs = {p: os.path.exists(p) for p in kube_host.HOST_DIRS}
    return {"iptables": _iptables(), "mounts": mounts, "links": links, "sysctls": sysctls, "dirs": dirs}


def test_down_restores_the_host(settings, core, kube_cluster, tmp_path):
    """Runs a pod, then `down` without deleting it first; the session's cluster is
    started again afterwards."""
    _down_restores_the_host(settings, core, tmp_path)


def _down_restores_the_host(settings, core, tmp_path) -> None:
    kube.down(settings)
    before = _host(settings.home_dir)
    t0 = time.monotonic()
    kube.up(settings)
    up_s = time.monotonic() - t0
    ns = f"node-down-{uuid.uuid4().hex[:8]}"
    datadir = tmp_path / "datadir"
    datadir.mkdir()
    try:
        _run_mariadb(core, ns, datadir)
        assert _host(settings.home_dir) != before  # the node did change the host
        t0 = time.monotonic()
        kube.down(settings)
        down_s = time.monotonic() - t0
        after = _host(settings.home_dir)
        for key in before:
            assert after[key] == before[key], key
        print(f"up {up_s:.1f} s, down with a running pod {down_s:.1f} s")
    finally:
        kube.up(settings)
        core.delete_namespace(ns)
        core.delete_persistent_volume(ns)
