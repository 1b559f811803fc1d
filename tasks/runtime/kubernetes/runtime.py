"""The `kubernetes` runtime: one namespace per environment (or breeder) on Rook/ceph-csi.

`phoenix-<id>` holds a Secret with the database credentials, a PVC bound to a static
ceph-csi PV that points at the RBD clone, the database Deployment (one replica,
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

from phoenix.config import Settings
from phoenix.errors import ConfigError
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


class KubernetesRuntime(Runtime):
    name = "kubernetes"

    def __init__(self, settings: Settings, storage: Volumes) -> None:
        if not storage.network_volumes:
            raise ConfigError("runtime 'kubernetes' needs storage = \"rbd\": its volumes are ceph-csi RBD images")
        self.settings, self.storage = settings, storage
        self.api = Api(settings)

    def close(self) -> None:
        self.api.close()

    # -- reading the state back from the API server ------------------------------------
    def _target(self, name: str, image: str, profile: Profile, labels: dict[str, str]) -> m.Target:
        good, rest = m.split_labels(labels)
        good.setdefault("phoenix.io/role", "breeder" if profile == "restore" else "environment")
        return m.Target(
            name=name,
            image=image,
            namespace=m.namespace_for(self.settings, name),
            profile=profile,
            size_bytes=self.storage.size(image),
            labels=good,
            annotations=rest,
        )

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
            host=f"{m.DB_NAME}.{ns}.svc.cluster.local",
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
            host=f"{m.DB_NAME}.{m.namespace_for(self.settings, name)}.svc.cluster.local",
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
            if pod and _ready(pod):
                return self.get(name)  # type: ignore[return-value]
            time.sleep(0.5)
        raise ServerFailed(
            f"database of {name!r} not ready after {timeout:.0f} s: {_why_not_ready(pod)}; "
            f"see `kubectl -n {ns} describe pod -l app.kubernetes.io/name={m.DB_NAME}`"
        )

    def stop(self, name: str, timeout: float = 600.0) -> None:
        ns_obj = self._namespace(name)
        if ns_obj is None:
            return
        ns = ns_obj["metadata"]["name"]
        if self.api.get(*_DEP, m.DB_NAME, ns) is not None:
            self.api.patch(*_DEP, m.DB_NAME, {"spec": {"replicas": 0}}, namespace=ns)
        deadline = time.monotonic() + timeout
        while self._pod(ns) is not None:  # the pod's grace period covers the slow shutdown
            if time.monotonic() > deadline:
                raise ServerFailed(f"database of {name!r} did not stop within {timeout:.0f} s")
            time.sleep(0.5)
        # The volume is released too (PVC, then PV): a reset re-clones the image under the same
        # namespace and credentials, and a breeder's image is snapshotted, only once no PV names it.
        self._release_volume(ns)

    def seal(self, name: str, timeout: float = 600.0) -> None:
        if self._namespace(name) is None:
            raise ServerNotFound(f"no server {name!r} in Kubernetes")
        # Renewing the redo log needs one more start of the stopped breeder with other server
        # arguments; until the pod path does that, a breed on this runtime fails closed.
        raise ServerFailed(
            f"breeder {name!r}: sealing (a fresh redo log before the forensic gate) is not "
            'available on the kubernetes runtime yet; breed with runtime = "local"'
        )

    def _release_volume(self, ns: str) -> None:
        self.api.delete(*_PVC, m.PVC_NAME, ns)
        self.api.wait_gone(*_PVC, m.PVC_NAME, ns)
        self.api.delete(*_PV, ns)
        self.api.wait_gone(*_PV, ns)

    def remove(self, name: str) -> None:
        ns = m.namespace_for(self.settings, name)
        if self._namespace(name) is not None:
            self.api.delete(*_NS, ns)
            self.api.wait_gone(*_NS, ns, timeout=300)
        pv = self.api.get(*_PV, ns)
        if pv is not None and (pv["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by") == "phoenix":
            self.api.delete(*_PV, ns)
            self.api.wait_gone(*_PV, ns)
