"""The `kubernetes` runtime: one namespace per environment (or breeder).

`phoenix-<id>` holds a Secret with the database credentials, a PVC bound to a static PV —
ceph-csi's, pointing at the RBD clone, or (`kubernetes.volumes = "local"`, the local cluster)
a `local` PV on the clone Phoenix mounted on this host's node (`node.py`) — the database Deployment (one replica,
Recreate), its Service, a NetworkPolicy and, if configured, the application. The
namespace's labels and annotations carry the state (whose, which generation, until
when); the API server is the only bookkeeping, so a restarted worker finds everything.

Stopping scales the Deployment to 0 (the pod's long grace period lets mariadbd shut down
slowly) and then releases the volume (PVC, then PV), because the caller may snapshot or
remove the image next. Removing deletes the namespace, waits until it is gone, deletes
the PV and waits again: an image is never removed while a PV still points to it.
"""

from __future__ import annotations

import base64
import secrets
import time

import pymysql

from phoenix.config import Settings
from phoenix.errors import KubernetesError
from tasks.runtime.base import (
    AdminAccess,
    Credentials,
    Endpoint,
    Profile,
    Runtime,
    ServerFailed,
    ServerNotFound,
    State,
    Volumes,
)
from tasks.runtime.kubernetes import manifests as m
from tasks.runtime.kubernetes import node
from tasks.runtime.kubernetes.api import Api

_NS, _PV, _PVC, _DEP, _SEC, _POD = (
    ("v1", "Namespace"),
    ("v1", "PersistentVolume"),
    ("v1", "PersistentVolumeClaim"),
    ("apps/v1", "Deployment"),
    ("v1", "Secret"),
    ("v1", "Pod"),
)


def _ready(pod: dict) -> bool:
    conds = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def _why_not_ready(pod: dict | None) -> str:
    if pod is None:
        return "no pod yet (is kube-controller-manager running?)"
    spec, st = pod.get("spec") or {}, pod.get("status") or {}
    if not spec.get("nodeName"):
        return "pod not scheduled to a node (no node fits, or no scheduler)"
    for cs in st.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting:
            return f"container waiting: {waiting.get('reason')}"
    return f"pod {st.get('phase', 'Pending')}, readiness probe not passing"


# Waiting states no amount of waiting gets a container out of: the spawn fails at once. Not
# CreateContainerConfigError: a busy kubelet reports it while its Secret cache catches up
# ("failed to sync secret cache", seen with 15 pods starting) and then starts the container.
_HOPELESS = {"ErrImageNeverPull", "ImagePullBackOff", "InvalidImageName", "CrashLoopBackOff"}


def _hopeless(pod: dict) -> tuple[str, bool] | None:
    """(the kubelet's reason, whether the last container's log says more) once the database
    container cannot become ready: it exited (mariadbd never exits by itself) or is stuck."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        state, last = cs.get("state") or {}, cs.get("lastState") or {}
        exited = state.get("terminated") or last.get("terminated")
        if exited:
            return f"the database container exited with code {exited.get('exitCode')} ({exited.get('reason')})", True
        waiting = state.get("waiting") or {}
        if waiting.get("reason") in _HOPELESS:
            message = (waiting.get("message") or "").strip().splitlines()
            return f"{waiting['reason']}" + (f": {message[0][:200]}" if message else ""), False
    return None


def _last_error(log: str) -> str:
    """mariadbd's last [ERROR] line without its timestamp (not its closing "Aborting"), else
    the log's last line."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    errors = [e for ln in lines if "[ERROR]" in ln and (e := ln.split("[ERROR]", 1)[1].strip()) != "Aborting"]
    return (errors or lines or [""])[-1][:300]


class KubernetesRuntime(Runtime):
    name = "kubernetes"

    def __init__(self, settings: Settings, storage: Volumes) -> None:
        node.refuse_impossible(settings, storage)
        self.settings, self.storage = settings, storage
        self.api = Api(settings)
        try:
            self.volumes = node.volume_kind(settings, storage, self.api)
        except BaseException:
            self.api.close()
            raise

    def close(self) -> None:
        self.api.close()

    # -- reading the state back from the API server ------------------------------------
    def _target(self, name: str, image: str, profile: Profile, labels: dict[str, str]) -> m.Target:
        good, rest = m.split_labels(labels)
        good.setdefault("phoenix.io/role", "breeder" if profile == "restore" else "environment")
        host = node.host_node(self.api) if self.volumes == "local" else None
        return m.Target(
            name=name,
            image=image,
            namespace=m.namespace_for(self.settings, name),
            profile=profile,
            size_bytes=self.storage.size(image),
            labels=good,
            annotations=rest,
            db_image=node.db_image(self.settings, host),
            volume=self.volumes,
            host_path=str(node.attach(self.storage, image, self.settings.kubernetes.db_uid)) if host else "",
            node=host["metadata"]["name"] if host else "",
        )

    def _host(self, ns: str) -> str:
        """The cluster's DNS name; from this host (local volumes: the host is the node, outside
        the cluster's DNS) the Service's ClusterIP, which kube-proxy routes here too."""
        if self.volumes == "csi":
            return f"{m.DB_NAME}.{ns}.svc.cluster.local"
        svc = self.api.get("v1", "Service", m.DB_NAME, ns) or {}
        return (svc.get("spec") or {}).get("clusterIP") or ""

    def _pod(self, ns: str) -> dict | None:
        pods = [
            p
            for p in self.api.list(*_POD, namespace=ns, labels={"app.kubernetes.io/name": m.DB_NAME})
            if not p["metadata"].get("deletionTimestamp")
        ]
        return max(pods, key=lambda p: p["metadata"]["creationTimestamp"]) if pods else None

    def _endpoint(self, ns_obj: dict) -> Endpoint:
        meta = ns_obj["metadata"]
        ns, ann = meta["name"], meta.get("annotations") or {}
        dep = self.api.get(*_DEP, m.DB_NAME, ns)
        state: State
        if meta.get("deletionTimestamp") or dep is None or not (dep.get("spec") or {}).get("replicas"):
            state = "stopped"
        else:
            pod = self._pod(ns)
            statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or []
            crashed = any(
                ((cs.get("state") or {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff" for cs in statuses
            )
            state = "running" if pod and _ready(pod) else "dead" if crashed else "starting"
        labels = {**(meta.get("labels") or {}), **{k: v for k, v in ann.items() if k == m.ANN_EXPIRES}}
        return Endpoint(
            name=ann.get(m.ANN_NAME, ns),
            image=ann.get(m.ANN_IMAGE, ""),
            host=self._host(ns),
            port=m.DB_PORT,
            state=state,
            profile=ann.get(m.ANN_PROFILE, "environment"),
            labels=labels,
        )

    def _namespace(self, name: str) -> dict | None:
        ns = self.api.get(*_NS, m.namespace_for(self.settings, name))
        if ns is None or (ns["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by") != "phoenix":
            return None  # never touch a namespace Phoenix did not create
        return ns

    def get(self, name: str) -> Endpoint | None:
        ns = self._namespace(name)
        return self._endpoint(ns) if ns else None

    def list(self) -> list[Endpoint]:
        return [self._endpoint(ns) for ns in self.api.list(*_NS, labels=m.MANAGED_BY)]

    def _secret(self, name: str) -> dict[str, str] | None:
        sec = self.api.get(*_SEC, m.SECRET_NAME, m.namespace_for(self.settings, name))
        if sec is None:
            return None
        return {k: base64.b64decode(v).decode() for k, v in (sec.get("data") or {}).items()}

    def credentials(self, name: str) -> Credentials | None:
        data = self._secret(name)
        if not data:
            return None
        return Credentials(
            user=data["MARIADB_USER"],
            password=data["MARIADB_PASSWORD"],
            database=data["MARIADB_DATABASE"],
            others=tuple(data.get("MARIADB_OTHER_DATABASES", "").splitlines()),
        )

    def admin(self, name: str) -> AdminAccess:
        data = self._secret(name)
        if not data:
            raise ServerNotFound(f"no server {name!r} in Kubernetes")
        return AdminAccess(
            host=self._host(m.namespace_for(self.settings, name)),
            port=m.DB_PORT,
            user="root",
            password=data["MARIADB_ROOT_PASSWORD"],
        )

    # -- lifecycle ---------------------------------------------------------------------
    def start(
        self,
        name: str,
        image: str,
        *,
        profile: Profile,
        credentials: Credentials | None = None,
        labels: dict[str, str] | None = None,
    ) -> Endpoint:
        current = self.get(name)
        if current and current.state in ("running", "starting") and current.image == image:
            return current
        if not self.storage.exists(image):
            raise ServerFailed(f"image {image!r} does not exist: nothing to run {name!r} on")
        t = self._target(name, image, profile, labels or {})
        old = self._secret(name) or {}
        if credentials is None and old:
            creds = Credentials(
                old["MARIADB_USER"],
                old["MARIADB_PASSWORD"],
                old["MARIADB_DATABASE"],
                tuple(old.get("MARIADB_OTHER_DATABASES", "").splitlines()),
            )
        else:
            creds = credentials or Credentials.generate(self.settings.database)
        root = old.get("MARIADB_ROOT_PASSWORD") or secrets.token_urlsafe(24)
        for obj in m.all_objects(self.settings, t, creds, root, env_id=name):
            if obj["kind"] == "Deployment":
                self._wait_bound(t.namespace)
            self.api.apply(obj)
        return self.get(name) or Endpoint(
            name=name, image=image, host="", port=m.DB_PORT, state="starting", profile=profile
        )

    def wait_ready(self, name: str, timeout: float = 120.0) -> Endpoint:
        """Until the database pod is Ready: its readiness probe runs a real query."""
        ns = m.namespace_for(self.settings, name)
        deadline = time.monotonic() + timeout
        pod = None
        while time.monotonic() < deadline:
            if self._namespace(name) is None:
                raise ServerNotFound(f"no server {name!r} in Kubernetes (namespace {ns} is gone)")
            pod = self._pod(ns)
            if pod and _ready(pod) and self._answers(name):
                return self.get(name)  # type: ignore[return-value]
            if pod and (why := _hopeless(pod)):
                raise ServerFailed(f"database of {name!r} cannot start: {self._reason(pod, *why)}")
            time.sleep(0.5)
        raise ServerFailed(
            f"database of {name!r} not ready after {timeout:.0f} s: {_why_not_ready(pod)}; "
            f"see `kubectl -n {ns} describe pod -l app.kubernetes.io/name={m.DB_NAME}`"
        )

    def _answers(self, name: str) -> bool:
        """With local volumes the caller is on this host and uses the ClusterIP: kube-proxy
        may route it to the new pod a moment after the kubelet reports Ready (a query right
        after a restart was reset), so a query through it must answer too."""
        if self.volumes != "local":
            return True  # in a cluster the callers' path is the Service's DNS name, from pods
        try:
            kw = self.admin(name).pymysql_kwargs()
            with pymysql.connect(**kw, connect_timeout=3, read_timeout=5) as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
            return True
        except (pymysql.MySQLError, OSError):
            return False

    def _reason(self, pod: dict, reason: str, exited: bool) -> str:
        if not exited:
            return reason
        meta = pod["metadata"]
        restarted = not ((pod["status"].get("containerStatuses") or [{}])[0].get("state") or {}).get("terminated")
        try:
            log = self.api.log(meta["name"], meta["namespace"], previous=restarted)
        except KubernetesError:
            return reason  # the reason alone still says the container exited
        said = _last_error(log)
        return f"{reason}: {said}" if said else reason

    def stop(self, name: str, timeout: float = 600.0) -> None:
        ns_obj = self._namespace(name)
        if ns_obj is None:
            return
        ns = ns_obj["metadata"]["name"]
        self._scale_down(name, ns, timeout)
        # The volume is released too (PVC, then PV): a reset re-clones the image under the same
        # namespace and credentials, and a breeder's image is snapshotted, only once no PV names it.
        self._release_volume(ns)
        self._detach(ns_obj)

    def _wait_bound(self, ns: str, timeout: float = 30.0) -> None:
        """A pod whose claim is not bound yet is unschedulable, and the scheduler retries it
        only after a backoff (2–3 s measured): the Deployment comes once the claim is bound.
        Not bound in time: the Deployment anyway, and wait_ready says why."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pvc = self.api.get(*_PVC, m.PVC_NAME, ns) or {}
            if (pvc.get("status") or {}).get("phase") == "Bound":
                return
            time.sleep(0.1)

    def _scale_down(self, name: str, ns: str, timeout: float) -> None:
        """No database pod left, terminating ones included: mariadbd's slow shutdown is over
        (the pod's grace period covers it) and the node has let go of the volume."""
        if self.api.get(*_DEP, m.DB_NAME, ns) is not None:
            self.api.patch(*_DEP, m.DB_NAME, {"spec": {"replicas": 0}}, namespace=ns)
        deadline = time.monotonic() + timeout
        while self.api.list(*_POD, namespace=ns, labels={"app.kubernetes.io/name": m.DB_NAME}):
            if time.monotonic() > deadline:
                raise ServerFailed(f"database of {name!r} did not stop within {timeout:.0f} s")
            time.sleep(0.5)

    def _detach(self, ns_obj: dict) -> None:
        """Local volumes: the clone Phoenix mounted for the PV, once no PV names it."""
        image = (ns_obj["metadata"].get("annotations") or {}).get(m.ANN_IMAGE)
        if self.volumes == "local" and image and self.storage.exists(image):
            self.storage.detach(image)

    def seal(self, name: str, timeout: float = 600.0) -> None:
        """After the slow shutdown: the pod once more with the environments' redo log size
        (InnoDB writes a new, empty log instead of the one that recorded the restore), until
        Ready, then slowly down again. Idempotent, as on the local runtime."""
        ns_obj = self._namespace(name)
        if ns_obj is None:
            raise ServerNotFound(f"no server {name!r} in Kubernetes")
        meta = ns_obj["metadata"]
        image = (meta.get("annotations") or {}).get(m.ANN_IMAGE, "")
        role = (meta.get("labels") or {}).get("phoenix.io/role", "breeder")
        self.start(name, image, profile="environment", labels={"phoenix.io/role": role})
        self.wait_ready(name, timeout)
        self.stop(name, timeout)

    def _release_volume(self, ns: str) -> None:
        self.api.delete(*_PVC, m.PVC_NAME, ns)
        self.api.wait_gone(*_PVC, m.PVC_NAME, ns)
        self.api.delete(*_PV, ns)
        self.api.wait_gone(*_PV, ns)

    def remove(self, name: str) -> None:
        ns = m.namespace_for(self.settings, name)
        ns_obj = self._namespace(name)
        if ns_obj is not None:
            # Scaled down first: a namespace deleted under its running pod took 4 minutes on
            # the real node (the pod, its Secret and PVC all terminating at once); stopped, 10 s.
            self._scale_down(name, ns, 600.0)
            self.api.delete(*_NS, ns)
            self.api.wait_gone(*_NS, ns, timeout=300)
        pv = self.api.get(*_PV, ns)
        if pv is not None and (pv["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by") == "phoenix":
            self.api.delete(*_PV, ns)
            self.api.wait_gone(*_PV, ns)
        if ns_obj is not None:
            self._detach(ns_obj)
