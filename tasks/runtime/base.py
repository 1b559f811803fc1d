"""The runtime contract: the strict point of cut-off between Phoenix and whatever runs
database servers (local processes, Kubernetes).

A runtime starts a MariaDB/MySQL server on a storage image, waits until it answers a
real query, stops it with a slow shutdown (so the files are consistent and a clone
starts without crash recovery), and lists what it runs. It finds its servers again
after the orchestrator restarts (pid files / labels), and reports a dead one as
`state="dead"` instead of assuming it alive.

What every implementation guarantees (`tests/runtime/test_contract.py` runs the same
suite on each):

- `start` is idempotent: a server of that name running on that image is returned as
  it is. A server has a stored account once `credentials` were given; `start` without
  them keeps the stored one.
- `stop` is a slow shutdown and keeps the server's state and credentials: `start` again
  serves the same data. Idempotent. The local runtime keeps the image attached; the
  Kubernetes one releases its volume (PVC and PV, and detaches a clone it mounted for a
  `local` PV), so the image can be re-cloned (reset) or snapshotted while the namespace
  and its Secret stay.
- `remove` stops, forgets the server and its runtime resources, releases the image
  (detached / volume released) and never removes the image itself. Idempotent.
- `seal` (breeders only) renews what the server's files record beyond the live data.
- Names nobody started: `get` → None, `stop`/`remove` → no-op, `wait_ready`/`admin`/
  `seal` → `ServerNotFound`.
- Errors are the `RuntimeError_` family (`ServerNotFound`, `ServerFailed`,
  `KubernetesError`/`KubernetesUnreachable`), each runtime mapping its own in one
  place; storage errors of attaching an image pass through as `StorageError`s.
- What a runtime needs of storage is `Volumes` (capabilities, not backend names).

Implementations: `local.py` (mariadbd processes on this host), `kubernetes/`
(namespace + Secret + static PV — ceph-csi's, or `local` on a clone mounted on this host's
node — + Deployment per environment).
Each is a context manager; `close()` releases clients, never servers.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol

from phoenix.db import AdminAccess
from phoenix.errors import RuntimeError_, ServerFailed, ServerNotFound

__all__ = [
    "AdminAccess",
    "Credentials",
    "Endpoint",
    "Profile",
    "Runtime",
    "State",
    "RuntimeError_",
    "ServerFailed",
    "ServerNotFound",
    "Volumes",
]

Profile = Literal["restore", "environment"]
State = Literal["starting", "running", "dead", "stopped"]


@dataclass(frozen=True)
class Credentials:
    """An environment's own database account. `repr` hides the password."""

    user: str
    password: str = field(repr=False)
    database: str  # the main one: what clients connect to
    others: tuple[str, ...] = ()  # further databases the account has all rights on (a dump's own)

    @classmethod
    def generate(cls, database: str, user: str = "app", others: tuple[str, ...] = ()) -> Credentials:
        return cls(user=user, password=secrets.token_urlsafe(24), database=database, others=others)

    @property
    def databases(self) -> list[str]:
        return [self.database, *(d for d in self.others if d != self.database)]


@dataclass(frozen=True)
class Endpoint:
    """Where a server is and what state it is in (no secrets here)."""

    name: str
    image: str
    host: str
    port: int
    state: State
    profile: Profile
    labels: dict[str, str] = field(default_factory=dict)
    pid: int | None = None
    socket: Path | None = None


class Volumes(Protocol):
    """What a runtime needs of the storage (the storage contract's verbs of these names):
    a filesystem for an image where the runtime runs servers on the host, the image's
    size and kind where a cluster mounts it itself."""

    name: str
    network_volumes: bool

    def attach(self, image: str) -> Path: ...

    def detach(self, image: str) -> None: ...

    def exists(self, image: str) -> bool: ...

    def size(self, image: str) -> int: ...


class Runtime(ABC):
    name: str  # "local" | "kubernetes"

    @abstractmethod
    def start(
        self,
        name: str,
        image: str,
        *,
        profile: Profile,
        credentials: Credentials | None = None,
        labels: dict[str, str] | None = None,
    ) -> Endpoint:
        """Start a server named `name` on storage image `image` (attaching it if the
        runtime needs a filesystem). With `credentials`, the server gets that account
        (created or its password reset) with all rights on its databases. Idempotent:
        a running server of that name is returned as it is."""

    @abstractmethod
    def wait_ready(self, name: str, timeout: float = 120.0) -> Endpoint:
        """Block until a real query answers; `ServerFailed` on timeout or death."""

    @abstractmethod
    def stop(self, name: str, timeout: float = 600.0) -> None:
        """Slow shutdown (innodb_fast_shutdown=0); keeps state and credentials (see the module
        docstring for the image). Idempotent; a no-op for an unknown name."""

    @abstractmethod
    def seal(self, name: str, timeout: float = 600.0) -> None:
        """For a stopped breeder: leave in its files only what the live data needs — a
        fresh redo log (the old one recorded the restore's original rows), no temporary
        or recovery files — and stop it slowly again. Idempotent. `ServerFailed` if the
        server is running or the runtime cannot do it (then nothing may be published)."""

    @abstractmethod
    def remove(self, name: str) -> None:
        """Stop and forget the server and its runtime resources (secrets, state),
        and detach its image; never removes the image itself. Idempotent."""

    @abstractmethod
    def get(self, name: str) -> Endpoint | None:
        """The server's endpoint and state, None if this runtime never started it."""

    @abstractmethod
    def list(self) -> list[Endpoint]:
        """Every server this runtime runs on this storage backend."""

    @abstractmethod
    def credentials(self, name: str) -> Credentials | None:
        """The environment's stored account, for reset and for `spawn --json`."""

    @abstractmethod
    def admin(self, name: str) -> AdminAccess:
        """How Phoenix itself reaches the server with full rights; `ServerNotFound` if unknown."""

    def close(self) -> None:  # noqa: B027
        """Release clients; servers keep running."""

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
