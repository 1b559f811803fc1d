"""One cycle at a time across hosts: the Prefect global concurrency limit `phoenix-breed`,
on the test stack's real Prefect server; a killed holder on this host does not block."""

from __future__ import annotations

import subprocess
import sys
from uuid import UUID

from prefect.client.orchestration import get_client

from tasks import catalog
from tasks.cycle_slot import LEASE_SECONDS, LIMIT_NAME, cycle_slot
from tests.conftest import REPO, run_phoenix


def test_a_second_holder_is_refused_while_the_first_holds_the_slot(tmp_path):
    with cycle_slot(tmp_path / "host-a") as first:
        assert first is True
        with cycle_slot(tmp_path / "host-b") as second:
            assert second is False
    with cycle_slot(tmp_path / "host-b") as again:  # released on exit
        assert again is True


def test_breed_is_rejected_while_another_host_holds_the_limit(storage_local, published, shop_dump):
    published("local")
    before = catalog.latest(storage_local)
    with get_client(sync_client=True) as client:  # another host's cycle, as Prefect sees it
        client.upsert_global_concurrency_limit_by_name(LIMIT_NAME, limit=1)
        lease = UUID(client.increment_concurrency_slots_with_lease(
            names=[LIMIT_NAME], slots=1, mode="concurrency", lease_duration=LEASE_SECONDS).json()["lease_id"])
        try:
            res = run_phoenix("breed", "--source", str(shop_dump), backend="local")
        finally:
            client.release_concurrency_slots_with_lease(lease)
    assert res.returncode == 3, res.stderr[-800:]
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("phoenix: error:")]
    assert len(errors) == 1 and f"holds the Prefect global concurrency limit '{LIMIT_NAME}'" in errors[0]
    assert catalog.latest(storage_local) == before and catalog.images(storage_local, catalog.BREEDER) == []


def test_a_killed_holder_on_this_host_does_not_block_the_next_cycle(tmp_path):
    home = tmp_path / "host"
    killed = subprocess.run([sys.executable, "-c", f"""
import os, signal
from pathlib import Path
from tasks.cycle_slot import cycle_slot
with cycle_slot(Path({str(home)!r})) as got:
    assert got
    os.kill(os.getpid(), signal.SIGKILL)
"""], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr[-800:]
    assert (home / "locks" / "breed.lease").exists()  # its lease is still held on the server
    with cycle_slot(tmp_path / "elsewhere") as other_host:
        assert other_host is False  # another host must wait for the lease to expire
    with cycle_slot(home) as got:  # this host knows the holder is dead: freed at once
        assert got is True


def test_a_slot_held_across_a_server_restart_is_freed_when_the_stack_starts_it(settings, tmp_path):
    """Prefect keeps leases in memory: after a restart an occupied slot has no lease
    left that could expire. `stack up` (prefect part) frees it."""
    from infra.local import prefect as local_prefect

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(LIMIT_NAME, limit=1)
        client.increment_concurrency_slots_with_lease(names=[LIMIT_NAME], slots=1, mode="concurrency",
                                                      lease_duration=LEASE_SECONDS)
    local_prefect.down(settings)  # the lease is gone with the server's memory, the slot stays in its DB
    local_prefect.up(settings)
    with cycle_slot(tmp_path / "host") as got:
        assert got is True
