"""Storage backends behind one contract (`base.Storage`)."""

from __future__ import annotations

from phoenix.config import Settings
from tasks.storage.base import (
    AlreadyExists,
    Busy,
    Extent,
    InvalidName,
    NotFound,
    Parent,
    Stalled,
    Storage,
    StorageError,
    Unavailable,
    validate_name,
)

__all__ = [
    "AlreadyExists",
    "Busy",
    "Extent",
    "InvalidName",
    "NotFound",
    "Parent",
    "Stalled",
    "Storage",
    "StorageError",
    "Unavailable",
    "open_storage",
    "validate_name",
]


def open_storage(settings: Settings) -> Storage:
    """The configured backend, connected. Use as a context manager."""
    if settings.storage == "rbd":
        from tasks.storage.rbd import RbdStorage

        return RbdStorage(
            conf=settings.ceph_conf,
            pool=settings.rbd.pool,
            connect_timeout=settings.rbd.connect_timeout,
            op_timeout=settings.rbd.op_timeout,
            attach_root=settings.home_dir / "rbd",
        )
    from tasks.storage.local import LocalStorage

    return LocalStorage(settings.btrfs_mount)
