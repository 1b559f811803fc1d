"""The Kubernetes objects of one environment (or breeder), as plain manifests.

Pure functions from names and settings to dicts: the runtime applies them, the tests
validate every one of them with `kubernetes-validate` (strict, a current Kubernetes).
No password ever appears here: the database container reads them from the Secret
(`envFrom`), and the init file that (re)creates the accounts is written inside the
container at start from those variables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from phoenix.config import Settings
from tasks.runtime.base import Credentials, Profile
from tasks.runtime.mariadb import COMMON_ARGS, PROFILES  # one definition for both runtimes

MANAGED_BY = {"app.kubernetes.io/managed-by": "phoenix"}
DB_NAME, SECRET_NAME, PVC_NAME, POLICY_NAME, APP_NAME = "mariadb", "phoenix-db", "data", "phoenix-db-ingress", "app"
DB_PORT = 3306
LOCAL_CLASS = "phoenix-local"  # the class of the `local` PVs (no StorageClass object: bound by name)
MOUNT = "/var/lib/phoenix"
DATADIR = f"{MOUNT}/mysql"  # the same layout the local runtime writes inside an image
ANN_NAME, ANN_IMAGE, ANN_EXPIRES, ANN_PROFILE = (
    "phoenix.io/name",
    "phoenix.io/image",
    "phoenix.io/expires",
    "phoenix.io/profile",
)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

# Requests/limits per profile: the breeder imports fast with a big buffer pool,
# environments stay small so dozens fit on a node.
_RESOURCES = {
    "restore": {"requests": {"cpu": "1", "memory": "3Gi"}, "limits": {"memory": "4Gi"}},
    "environment": {"requests": {"cpu": "50m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}},
}

# The init file, from the Secret's variables: root and the environment's account, with all
# rights on its database and on each of MARIADB_OTHER_DATABASES (one a line: a dump's own);
# unlocked, as a golden may hold accounts of those names made locked for a dump's DEFINERs.
INIT_FILE = r"""umask 077
cat > %(init)s <<EOF
CREATE USER IF NOT EXISTS 'root'@'%%' IDENTIFIED BY '$MARIADB_ROOT_PASSWORD';
ALTER USER 'root'@'%%' IDENTIFIED BY '$MARIADB_ROOT_PASSWORD' ACCOUNT UNLOCK;
GRANT ALL ON *.* TO 'root'@'%%' WITH GRANT OPTION;
CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;
CREATE USER IF NOT EXISTS '$MARIADB_USER'@'%%' IDENTIFIED BY '$MARIADB_PASSWORD';
ALTER USER '$MARIADB_USER'@'%%' IDENTIFIED BY '$MARIADB_PASSWORD' ACCOUNT UNLOCK;
GRANT ALL ON \`$MARIADB_DATABASE\`.* TO '$MARIADB_USER'@'%%';
EOF
if [ -n "${MARIADB_OTHER_DATABASES:-}" ]; then
  printf '%%s\n' "$MARIADB_OTHER_DATABASES" | sed 's/`/``/g' | while IFS= read -r db; do
    [ -n "$db" ] || continue
    printf 'CREATE DATABASE IF NOT EXISTS `%%s`;\nGRANT ALL ON `%%s`.* TO '"'"'%%s'"'"'@'"'"'%%%%'"'"';\n' \
      "$db" "$db" "$MARIADB_USER" >> %(init)s
  done
fi
"""
# Runs in the database container: install a datadir on a fresh (breeder) image, write the
# init file (so the account exists with the Secret's password on every start, also on a
# clone of a golden), then become mariadbd.
_ENTRYPOINT = (
    r"""set -eu
D=%(datadir)s
if [ ! -d "$D/mysql" ]; then mkdir -p "$D"; chown mysql:mysql "$D"; mariadb-install-db --user=mysql --datadir="$D" --skip-test-db >/dev/null; fi
"""
    + INIT_FILE
    + r"""chown mysql %(init)s
exec mariadbd --user=mysql --datadir="$D" --init-file=%(init)s "$@"
"""
)
# The readiness probe runs a real query as the environment's own user.
_PROBE = 'MYSQL_PWD="$MARIADB_PASSWORD" mariadb -h127.0.0.1 -u"$MARIADB_USER" "$MARIADB_DATABASE" -e "SELECT 1"'


@dataclass(frozen=True)
class Target:
    """Everything the manifests of one server depend on."""

    name: str  # Phoenix's server name (environment id or breeder name)
    image: str  # the RBD image the PV points to
    namespace: str
    profile: Profile
    size_bytes: int
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    db_image: str = "mariadb:10.11"
    # "csi": ceph-csi maps the RBD image; "local": the image is mounted at host_path on `node`
    volume: str = "csi"
    host_path: str = ""
    node: str = ""

    @property
    def pv_name(self) -> str:
        return self.namespace  # cluster-scoped, one per environment: same name as its namespace

    @property
    def selector(self) -> dict[str, str]:
        return {"app.kubernetes.io/name": DB_NAME, "phoenix.io/server": self.namespace}


def namespace_for(settings: Settings, name: str) -> str:
    """DNS-1123 label: lower case; long names shortened with a stable hash suffix."""
    import hashlib

    base = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "x"
    ns = settings.kubernetes.namespace_prefix + base
    if len(ns) > 63:
        ns = ns[:54].rstrip("-") + "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return ns


def split_labels(labels: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Values a label cannot hold (timestamps with ':', long names) become annotations."""
    good: dict[str, str] = {}
    rest: dict[str, str] = {}
    for k, v in labels.items():
        (good if len(v) <= 63 and _LABEL_VALUE.match(v) and k != ANN_EXPIRES else rest)[k] = v
    return good, rest


def _meta(name: str, t: Target, namespaced: bool = True, **extra: dict[str, str]) -> dict:
    meta = {"name": name, "labels": {**t.labels, **MANAGED_BY, **extra.get("labels", {})}}
    if namespaced:
        meta["namespace"] = t.namespace
    if extra.get("annotations"):
        meta["annotations"] = extra["annotations"]
    return meta


def namespace(t: Target) -> dict:
    ann = {**t.annotations, ANN_NAME: t.name, ANN_IMAGE: t.image, ANN_PROFILE: t.profile}
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": _meta(t.namespace, t, namespaced=False, annotations=ann),
    }


def secret(t: Target, creds: Credentials, root_password: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _meta(SECRET_NAME, t),
        "stringData": {
            "MARIADB_USER": creds.user,
            "MARIADB_PASSWORD": creds.password,
            "MARIADB_DATABASE": creds.database,
            "MARIADB_ROOT_PASSWORD": root_password,
            **({"MARIADB_OTHER_DATABASES": "\n".join(creds.others)} if creds.others else {}),
        },
    }


def _quantity(size_bytes: int) -> str:
    return f"{max(1, -(-size_bytes // 2**20))}Mi"


def _storage_class(settings: Settings, t: Target) -> str:
    return LOCAL_CLASS if t.volume == "local" else settings.kubernetes.storage_class


def _local_source(t: Target) -> dict:
    """The clone as Phoenix mounted it on the node (tasks/runtime/kubernetes/node.py)."""
    term = {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [t.node]}]}
    return {"local": {"path": t.host_path}, "nodeAffinity": {"required": {"nodeSelectorTerms": [term]}}}


def persistent_volume(settings: Settings, t: Target) -> dict:
    spec = {
        "capacity": {"storage": _quantity(t.size_bytes)},
        "accessModes": ["ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Retain",  # the image belongs to Phoenix, not to Kubernetes
        "volumeMode": "Filesystem",
        "storageClassName": _storage_class(settings, t),
        "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": t.namespace, "name": PVC_NAME},
    }
    spec |= _local_source(t) if t.volume == "local" else _csi_source(settings, t)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": _meta(t.pv_name, t, namespaced=False),
        "spec": spec,
    }


def _csi_source(settings: Settings, t: Target) -> dict:
    k = settings.kubernetes
    return {
        "csi": {
            "driver": "rbd.csi.ceph.com",
            "fsType": k.fs_type,
            "volumeHandle": t.image,
            "volumeAttributes": {
                "clusterID": settings.rbd.cluster_id,
                "pool": settings.rbd.pool,
                "staticVolume": "true",
                "imageFeatures": "layering",
            },
            "nodeStageSecretRef": {"name": k.node_stage_secret, "namespace": k.node_stage_secret_namespace},
        },
    }


def persistent_volume_claim(settings: Settings, t: Target) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(PVC_NAME, t),
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": _storage_class(settings, t),
            "volumeName": t.pv_name,
            "volumeMode": "Filesystem",
            "resources": {"requests": {"storage": _quantity(t.size_bytes)}},
        },
    }


def deployment(settings: Settings, t: Target, replicas: int = 1) -> dict:
    # Each probe execs a client in the container: every 2 s once up (CPU adds up over dozens of
    # environments on a node), every 1 s while starting, so a spawn waits little for the Ready.
    probe = {"exec": {"command": ["sh", "-c", _PROBE]}, "periodSeconds": 2, "timeoutSeconds": 5, "failureThreshold": 3}
    container = {
        "name": DB_NAME,
        "image": t.db_image,
        # Images built on the node (localhost/…) cannot be pulled: a missing one fails at once.
        "imagePullPolicy": "Never" if t.db_image.startswith("localhost/") else "IfNotPresent",
        "command": [
            "sh",
            "-c",
            _ENTRYPOINT % {"datadir": DATADIR, "init": "/tmp/phoenix-init.sql"},
            "phoenix-entrypoint",
        ],
        "args": [*_mariadbd_args(t.profile)],
        "envFrom": [{"secretRef": {"name": SECRET_NAME}}],
        "ports": [{"name": "mysql", "containerPort": DB_PORT}],
        "readinessProbe": probe,
        # crash recovery/first start may take a while
        "startupProbe": {**probe, "periodSeconds": 1, "failureThreshold": 600},
        "resources": _RESOURCES[t.profile],
        "volumeMounts": [{"name": "data", "mountPath": MOUNT}],
    }
    pod_labels = {**t.selector, **MANAGED_BY}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(DB_NAME, t),
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "Recreate"},  # one writer on an RWO image
            "selector": {"matchLabels": t.selector},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "containers": [container],
                    "automountServiceAccountToken": False,
                    # room for the slow shutdown (innodb_fast_shutdown=0)
                    "terminationGracePeriodSeconds": 600,
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": PVC_NAME}}],
                },
            },
        },
    }


def _mariadbd_args(profile: Profile) -> list[str]:
    return [*COMMON_ARGS, *PROFILES[profile], "--bind-address=0.0.0.0", f"--port={DB_PORT}"]


def service(t: Target) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(DB_NAME, t),
        "spec": {"selector": t.selector, "ports": [{"name": "mysql", "port": DB_PORT, "targetPort": "mysql"}]},
    }


def network_policy(settings: Settings, t: Target) -> dict:
    """Only pods of the environment's own namespace reach its database; a breeder also
    admits the Phoenix worker, which streams the restore into it."""
    peers: list[dict] = [{"podSelector": {}}]
    if t.profile == "restore":
        peers.append(
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": settings.kubernetes.worker_namespace}
                },
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "phoenix-worker"}},
            }
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(POLICY_NAME, t),
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": DB_NAME}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": peers, "ports": [{"protocol": "TCP", "port": DB_PORT}]}],
        },
    }


def _app_env(settings: Settings) -> list[dict]:
    """The database connection for the application; the password by reference to the Secret."""
    return [
        {"name": "DB_HOST", "value": DB_NAME},
        {"name": "DB_PORT", "value": str(DB_PORT)},
        *(
            {"name": n, "valueFrom": {"secretKeyRef": {"name": SECRET_NAME, "key": key}}}
            for n, key in (
                ("DB_NAME", "MARIADB_DATABASE"),
                ("DB_USER", "MARIADB_USER"),
                ("DB_PASSWORD", "MARIADB_PASSWORD"),
            )
        ),
        *({"name": n, "value": v} for n, v in sorted(settings.kubernetes.app_env.items())),
    ]


def _ingress(t: Target, host: str) -> dict:
    backend = {"service": {"name": APP_NAME, "port": {"number": 80}}}
    path = {"path": "/", "pathType": "Prefix", "backend": backend}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": _meta(APP_NAME, t),
        "spec": {"rules": [{"host": host, "http": {"paths": [path]}}]},
    }


def app_objects(settings: Settings, t: Target, env_id: str) -> list[dict]:
    """The optional application: Deployment + Service + Ingress at `<id>.<base_domain>`,
    with the database connection in its environment (the password from the Secret)."""
    k = settings.kubernetes
    sel = {"app.kubernetes.io/name": APP_NAME, "phoenix.io/server": t.namespace}
    container = {
        "name": APP_NAME,
        "image": k.app_image,
        "env": _app_env(settings),
        "ports": [{"name": "http", "containerPort": k.app_port}],
    }
    pod = {"automountServiceAccountToken": False, "containers": [container]}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta(APP_NAME, t),
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": sel},
                "template": {"metadata": {"labels": {**sel, **MANAGED_BY}}, "spec": pod},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(APP_NAME, t),
            "spec": {"selector": sel, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        },
        _ingress(t, f"{env_id}.{k.base_domain}"),
    ]


def all_objects(settings: Settings, t: Target, creds: Credentials, root_password: str, env_id: str) -> list[dict]:
    """In apply order."""
    objs = [
        namespace(t),
        secret(t, creds, root_password),
        persistent_volume(settings, t),
        persistent_volume_claim(settings, t),
        network_policy(settings, t),
        service(t),
        deployment(settings, t),
    ]
    if settings.kubernetes.app_image and t.profile == "environment":
        objs += app_objects(settings, t, env_id)
    return objs
