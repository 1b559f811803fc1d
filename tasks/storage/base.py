"""The storage contract: the strict point of cut-off between Phoenix and a volume backend.

Everything above this line (flows, catalog, runtimes) talks only to `Storage`;
everything below it (librbd, btrfs) is hidden in one implementation module each
(`rbd.py`, `local.py`). The verbs are the ones Ceph RBD needs for the phoenix cycle —
create, snapshot, protect, clone, flatten, unprotect, remove — and the local btrfs
backend implements the same verbs with its own means.

Rules every implementation keeps:

- Names are validated with `validate_name` before any backend call.
- Errors are the typed `StorageError` subclasses below, with one-line messages;
  a backend's own exceptions never escape.
- Removing an image refuses while it has snapshots or clones (`Busy`); removing a
  snapshot refuses while it is protected or has clones (`Busy`); creating what
  exists raises `AlreadyExists`; acting on what does not exist raises `NotFound`.
  Callers that want idempotency catch those explicitly.
- Metadata keys are strings under the `phoenix.` prefix; values are strings, kept
  opaquely: what they mean is the catalog's (`tasks/schema.py`), never a backend's.
- An implementation is a context manager; `close()` releases connections, and
  detaches nothing (attachments outlive the process: a database server runs on them).
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from phoenix.errors import AlreadyExists, Busy, InvalidName, NotFound, Stalled, StorageError, Unavailable
from phoenix.names import validate_name

__all__ = [
    "AlreadyExists",
    "Busy",
    "Extent",
    "InvalidName",
    "NotFound",
    "Parent",
    "Storage",
    "Stalled",
    "StorageError",
    "Unavailable",
    "validate_name",
]


@dataclass(frozen=True)
class Extent:
    """A run of bytes of an image: `place` names the file (or the image device) and
    `offset` where `data` starts in it. Chunks of one place come in order."""

    place: str
    offset: int
    data: bytes


@dataclass(frozen=True)
class Parent:
    image: str
    snapshot: str


class Storage(ABC):
    """A pool of copy-on-write images. One instance per process; not thread-safe
    unless the implementation says so (the local and rbd ones are)."""

    name: str  # "local" | "rbd"
    # Capabilities (runtimes ask these, never the backend's name):
    network_volumes: bool = False  # an image is a network block device a node can map (ceph-csi)

    # -- images --------------------------------------------------------------
    @abstractmethod
    def create(self, image: str, size_bytes: int) -> None: ...

    @abstractmethod
    def remove(self, image: str) -> None:
        """Delete an image; `Busy` while it has snapshots or is attached."""

    @abstractmethod
    def exists(self, image: str) -> bool: ...

    @abstractmethod
    def list(self) -> list[str]:
        """Image names, sorted."""

    @abstractmethod
    def usage(self, image: str) -> int:
        """Bytes this image itself uses (not what it shares with its parent)."""

    @abstractmethod
    def size(self, image: str) -> int:
        """Provisioned size in bytes."""

    # -- snapshots -----------------------------------------------------------
    @abstractmethod
    def snapshot(self, image: str, snap: str) -> None: ...

    @abstractmethod
    def snapshots(self, image: str) -> builtins.list[str]: ...

    @abstractmethod
    def remove_snapshot(self, image: str, snap: str) -> None:
        """`Busy` while protected or cloned."""

    @abstractmethod
    def protect(self, image: str, snap: str) -> None:
        """Idempotent: protecting a protected snapshot is a no-op."""

    @abstractmethod
    def unprotect(self, image: str, snap: str) -> None:
        """`Busy` while the snapshot has clones. Idempotent otherwise."""

    @abstractmethod
    def is_protected(self, image: str, snap: str) -> bool: ...

    # -- clones --------------------------------------------------------------
    @abstractmethod
    def clone(self, image: str, snap: str, new_image: str) -> None:
        """A writable copy-on-write image of a protected snapshot; it starts with no metadata."""

    @abstractmethod
    def children(self, image: str, snap: str) -> builtins.list[str]:
        """Images cloned from `image@snap` that still depend on it (sorted)."""

    @abstractmethod
    def parent(self, image: str) -> Parent | None:
        """The snapshot this image still depends on; None once flattened."""

    @abstractmethod
    def flatten(self, image: str) -> None:
        """Copy the parent's data in, so the image no longer depends on it."""

    # -- metadata ------------------------------------------------------------
    @abstractmethod
    def get_meta(self, image: str, key: str) -> str | None: ...

    @abstractmethod
    def set_meta(self, image: str, key: str, value: str) -> None: ...

    @abstractmethod
    def remove_meta(self, image: str, key: str) -> None:
        """Idempotent."""

    @abstractmethod
    def list_meta(self, image: str) -> dict[str, str]: ...

    # -- filesystem ------------------------------------------------------------
    @abstractmethod
    def attach(self, image: str) -> Path:
        """Mount the image and return the directory; idempotent (same path again).
        The first attach of a new image makes its filesystem."""

    @abstractmethod
    def detach(self, image: str) -> None:
        """Unmount; idempotent (detaching a detached image is a no-op)."""

    @abstractmethod
    def attached(self, image: str) -> Path | None: ...

    # -- the bytes an image holds (the forensic gate) ------------------------------------
    @abstractmethod
    def extents(self, image: str, snap: str | None = None, chunk: int = 8 << 20) -> Iterator[Extent]:
        """Every byte a reader of the image (or of `image@snap`) can get at, in chunks of at
        most `chunk` bytes: the whole block device on a block backend (free blocks included;
        never-written regions read as zeros and are skipped), every file on a filesystem
        backend. Read-only; the image must not be in use."""

    @abstractmethod
    def read(self, image: str, snap: str | None, place: str, offset: int, length: int) -> bytes:
        """`length` bytes at `offset` of `place` — a place as `extents()` of this backend names
        it for any image (a file of the image; a block backend's one place, the device, is
        the image itself and the name is not looked at). Short or empty past the end."""

    @abstractmethod
    def zero_free(self, image: str) -> None:
        """Make the free space of a detached image's filesystem read as zeros, so blocks
        freed by deleted files carry nothing into snapshots and clones. A no-op where free
        space is not part of what a clone exposes (btrfs: a clone is only its files)."""

    # -- lifecycle -------------------------------------------------------------
    def close(self) -> None:  # noqa: B027 - optional for backends with nothing to release
        """Release connections. Attachments stay (servers run on them)."""

    def __enter__(self) -> Storage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
