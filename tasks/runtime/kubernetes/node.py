"""Volumes on a node of this host (`kubernetes.volumes = "local"`): the local cluster has no
ceph-csi (and no rbd kernel module for it to map with), so Phoenix attaches the clone here,
as the local runtime does (btrfs subvolume, or rbd-fuse + loop), hands the mounted
directory to the pod as a `local` PersistentVolume bound to the node, and detaches it once
that PV is gone. Everything else about the environment is the same objects as with csi.

The node is the one `phoenix stack up --kubernetes` labels HOST_LABEL; it also announces
its MariaDB image (ANN_DB_IMAGE), which `kubernetes.db_image = ""` uses.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from phoenix.config import Settings
from phoenix.errors import ConfigError
from tasks.runtime.base import Volumes
from tasks.runtime.kubernetes.api import Api

HOST_LABEL = "phoenix.io/host-node"  # value "true": the node runs on this host, its paths are ours
ANN_DB_IMAGE = "phoenix.io/mariadb-image"  # the MariaDB image imported on that node
CEPH_CSI = "rbd.csi.ceph.com"
REGISTRY_IMAGE = "mariadb:10.11"  # db_image "" where ceph-csi mounts the volumes (a real cluster)
VolumeKind = Literal["csi", "local"]


def refuse_impossible(settings: Settings, storage: Volumes) -> None:
    """Before any API call: csi volumes are RBD images."""
    if settings.kubernetes.volumes == "csi" and not storage.network_volumes:
        raise ConfigError(
            'runtime \'kubernetes\' with kubernetes.volumes = "csi" needs storage = "rbd": ceph-csi maps '
            'RBD images; on a node of this host set kubernetes.volumes = "local"'
        )


def volume_kind(settings: Settings, storage: Volumes, api: Api) -> VolumeKind:
    """The setting, with `auto` derived from the cluster: csi if its driver is registered."""
    chosen = settings.kubernetes.volumes
    if chosen != "auto":
        return chosen
    has_csi = storage.network_volumes and api.get("storage.k8s.io/v1", "CSIDriver", CEPH_CSI) is not None
    return "csi" if has_csi else "local"


def host_node(api: Api) -> dict:
    nodes = api.list("v1", "Node", labels={HOST_LABEL: "true"})
    if not nodes:
        raise ConfigError(
            'kubernetes.volumes = "local" needs a node on this host (labelled '
            f"{HOST_LABEL}=true): start it with `phoenix stack up --kubernetes`, "
            'or use volumes = "csi" with storage = "rbd" on a cluster with ceph-csi'
        )
    return nodes[0]


def db_image(settings: Settings, host: dict | None) -> str:
    """The configured image; for "": the image `host` (the local node, with local volumes)
    announces, else the registry's."""
    if settings.kubernetes.db_image:
        return settings.kubernetes.db_image
    if host is None:
        return REGISTRY_IMAGE
    ann = host["metadata"].get("annotations") or {}
    if not ann.get(ANN_DB_IMAGE):
        raise ConfigError(
            f"the local node announces no MariaDB image ({ANN_DB_IMAGE}): re-run "
            "`phoenix stack up --kubernetes`, or set kubernetes.db_image"
        )
    return ann[ANN_DB_IMAGE]


def attach(storage: Volumes, image: str, uid: int) -> Path:
    """Mount the image on this host and give its files to the container's mysql user (the
    local runtime ran the golden as this host's mysql, whose uid differs)."""
    path = storage.attach(image)
    for top, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            os.lchown(os.path.join(top, name), uid, uid)
    os.chown(path, uid, uid)
    return path
