"""One breed cycle at a time, across hosts: the Prefect global concurrency limit
`phoenix-breed` (limit 1), held with a lease for the cycle's whole run.

Prefect's own `concurrency()` keeps a killed holder's slot until its lease expires. A
SIGKILLed cycle must not block the next one for minutes, so the lease id is written to
`<home>/locks/breed.lease` beside the host lock: the next cycle on this host (which
holds the host lock, so no cycle of this host is alive) releases a lease whose writer
is dead at once. A holder on another host that died frees the slot when its lease
expires (`LEASE_SECONDS`); a live holder renews it every `LEASE_SECONDS / 4`.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectAlreadyExists

from tasks.runtime.mariadb import pid_alive

LIMIT_NAME = "phoenix-breed"
LEASE_SECONDS = 60.0


def _lease_file(home: Path) -> Path:
    return home / "locks" / "breed.lease"


def _release_stale(client, home: Path) -> None:  # noqa: ANN001 - Prefect's sync client
    """Only call while holding the host's cycle lock."""
    path = _lease_file(home)
    try:
        rec = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return
    if rec.get("host") == socket.gethostname() and not pid_alive(rec.get("pid")):
        with contextlib.suppress(Exception):  # already expired and reclaimed: nothing to free
            client.release_concurrency_slots_with_lease(UUID(rec["lease_id"]))
    path.unlink(missing_ok=True)


def free_orphaned_slots() -> None:
    """Call right after the Prefect server started: its default lease storage lives in
    memory, so a slot held across a restart belongs to a lease nobody can release or
    expire any more, and would block every cycle for good."""
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        with contextlib.suppress(ObjectNotFound):
            if client.read_global_concurrency_limit_by_name(LIMIT_NAME).active_slots:
                client.update_global_concurrency_limit(LIMIT_NAME, GlobalConcurrencyLimitUpdate(active_slots=0))


def _ensure_limit(client) -> None:  # noqa: ANN001
    try:
        client.upsert_global_concurrency_limit_by_name(LIMIT_NAME, limit=1)
    except ObjectAlreadyExists:
        pass  # created by a concurrent cycle a moment ago


@contextlib.contextmanager
def cycle_slot(home: Path) -> Iterator[bool]:
    """Yields False (holding nothing) when another cycle holds the slot."""
    import httpx

    with get_client(sync_client=True) as client:
        _ensure_limit(client)
        _release_stale(client, home)
        try:
            resp = client.increment_concurrency_slots_with_lease(
                names=[LIMIT_NAME], slots=1, mode="concurrency", lease_duration=LEASE_SECONDS)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 423:  # Locked: no free slot
                yield False
                return
            raise
        lease_id = UUID(resp.json()["lease_id"])
        path = _lease_file(home)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"lease_id": str(lease_id), "pid": os.getpid(), "host": socket.gethostname()}))
        stop = threading.Event()
        renewer = threading.Thread(target=_renew, args=(lease_id, stop), name="breed-lease", daemon=True)
        renewer.start()
        try:
            yield True
        finally:
            stop.set()
            renewer.join(5)
            with contextlib.suppress(Exception):
                client.release_concurrency_slots_with_lease(lease_id)
            path.unlink(missing_ok=True)


def _renew(lease_id: UUID, stop: threading.Event) -> None:
    with get_client(sync_client=True) as client:  # its own client: httpx clients are not thread-safe
        while not stop.wait(LEASE_SECONDS / 4):
            with contextlib.suppress(Exception):  # a missed renewal is retried; expiry takes 4 misses
                client.renew_concurrency_lease(lease_id, lease_duration=LEASE_SECONDS)
