"""The local stack: the real parts Phoenix runs on, started and stopped by their pids.

Parts, in start order: btrfs (always), ceph (with --ceph or storage=rbd), prefect
(always), worker (registers the deployments and polls the work pool), kubernetes
(with --kubernetes), kube-worker (with --k8s-worker: the Prefect Kubernetes worker in that
cluster, and the `*-k8s` deployments). Each part is a module with `up(settings) -> dict`,
`down(settings)`, `status(settings) -> dict | None`, idempotent. `up` stops what it
started itself if a later part fails, so nothing half-started is left running.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from phoenix.config import Settings
from phoenix.errors import PhoenixError, StackError

PARTS = ("btrfs", "ceph", "prefect", "worker", "kubernetes", "kube-worker")
_MODULES = {"btrfs": "btrfs", "ceph": "ceph", "prefect": "prefect", "worker": "worker", "kubernetes": "kube",
            "kube-worker": "kube_worker"}


def _part(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"infra.local.{_MODULES[name]}")
    except ModuleNotFoundError as exc:
        if exc.name == f"infra.local.{_MODULES[name]}":
            return None  # part not part of this build
        raise


def wanted(settings: Settings, *, ceph: bool = False, kubernetes: bool = False, k8s_worker: bool = False) -> list[str]:
    parts = ["btrfs"]
    if ceph or settings.storage == "rbd":
        parts.append("ceph")
    parts += ["prefect", "worker"]
    if kubernetes or k8s_worker or settings.runtime == "kubernetes":
        parts.append("kubernetes")
    if k8s_worker:
        parts.append("kube-worker")
    return parts


def _preflight(settings: Settings) -> None:
    if os.geteuid() != 0:
        raise StackError("the local stack needs root (loop devices, mounts): run as root, e.g. `sudo phoenix stack up`")
    home = settings.home_dir
    try:
        home.mkdir(parents=True, exist_ok=True)
        probe = home / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise StackError(f"state directory {home} is not writable ({exc.strerror}): "
                         "set PHOENIX_HOME to a writable path") from None


def up(settings: Settings, *, ceph: bool = False, kubernetes: bool = False, k8s_worker: bool = False,
       progress=print) -> dict[str, dict | None]:
    _preflight(settings)
    started: list[str] = []
    try:
        for name in wanted(settings, ceph=ceph, kubernetes=kubernetes, k8s_worker=k8s_worker):
            mod = _part(name)
            if mod is None:
                continue
            was_running = mod.status(settings) is not None
            progress(f"{name}: {'running' if was_running else 'starting'}")
            mod.up(settings)
            if not was_running:
                started.append(name)
    except BaseException as exc:
        for name in reversed(started):
            try:
                _part(name).down(settings)  # type: ignore[union-attr]
            except Exception:  # noqa: BLE001 - best effort; the original error matters
                pass
        if isinstance(exc, PhoenixError):
            raise
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise StackError(f"starting the stack failed: {exc}") from None
    return status(settings)


def down(settings: Settings, progress=print) -> None:
    """Everything `up` started, and first the servers of this home's environments and
    breeders: they hold the pool busy (the clones stay; `phoenix spawn NAME` starts one again)."""
    from tasks.runtime.local import stop_all

    if settings.runtime == "local":
        stopped = stop_all(settings)
        if stopped:
            progress(f"servers: stopped {len(stopped)} ({', '.join(stopped)}); their clones stay, a spawn starts them again")
    for name in reversed(PARTS):
        mod = _part(name)
        if mod is None:
            continue
        progress(f"{name}: stopping")
        mod.down(settings)


def status(settings: Settings) -> dict[str, dict | None]:
    out: dict[str, dict | None] = {}
    for name in PARTS:
        mod = _part(name)
        out[name] = mod.status(settings) if mod is not None else None
    return out
