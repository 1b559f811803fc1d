"""The phoenix cycle's invariants, on both storage backends, with real MariaDB."""

from __future__ import annotations

import subprocess
import threading

import pymysql
import pytest

from tasks import catalog
from tasks.cycle import STEPS
from tasks.schema import BASE_SNAPSHOT
from tests.conftest import run_phoenix


def _state(storage):
    return {"latest": catalog.latest(storage), "breeders": catalog.images(storage, catalog.BREEDER),
            "breeding": [g.id for g in catalog.generations(storage) if g.state == catalog.BREEDING]}


def _customers_of(backend: str, generation: str) -> tuple:
    """Spawn a throwaway environment of `generation` and read a fingerprint of its data."""
    name = f"probe-{backend}"
    res = run_phoenix("spawn", name, "--generation", generation, "--recreate", "--json", backend=backend)
    assert res.returncode == 0, res.stderr[-1500:]
    import json

    info = json.loads(res.stdout.strip().splitlines()[-1])
    conn = pymysql.connect(host=info["host"], port=info["port"], user=info["user"], password=info["password"],
                           database=info["database"])
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*), MIN(email), MAX(email) FROM customers")
        fp = cur.fetchone()
    conn.close()
    assert run_phoenix("teardown", name, backend=backend).returncode == 0
    return fp


@pytest.mark.parametrize("step", STEPS[:-1])
def test_a_cycle_killed_at_any_step_leaves_latest_unchanged(backend, storage, published, shop_dump, step):
    before = published(backend)
    res = run_phoenix("breed", "--source", str(shop_dump), backend=backend,
                      env={"PHOENIX_FAULT_KILL_AFTER": step})
    assert res.returncode == -9, f"not killed after {step}: {res.stderr[-800:]}"
    state = _state(storage)
    if step in ("publish", "remove_breeder"):
        # killed after the atomic publish: the new golden is complete and may be latest
        assert state["latest"] != before and state["latest"].startswith("golden-")
    else:
        assert state["latest"] == before
    # the reaper removes the leftovers of the killed cycle
    reap = run_phoenix("reap", backend=backend)
    assert reap.returncode == 0, reap.stderr[-800:]
    after = _state(storage)
    assert after["breeders"] == [] and after["breeding"] == []
    assert after["latest"] == state["latest"]
    assert storage.is_protected(after["latest"], BASE_SNAPSHOT)


def test_latest_survives_a_killed_cycle_and_serves_the_same_data(backend, storage, published, shop_dump):
    before = published(backend)
    fp = _customers_of(backend, before)
    res = run_phoenix("breed", "--source", str(shop_dump), backend=backend,
                      env={"PHOENIX_FAULT_KILL_AFTER": "anonymize"})
    assert res.returncode == -9
    # the next cycle cleans up what the killed one left, and publishes
    res = run_phoenix("breed", "--source", str(shop_dump), backend=backend)
    assert res.returncode == 0, res.stderr[-1500:]
    assert _state(storage)["breeders"] == []
    assert _customers_of(backend, before) == fp  # the old golden still clones and serves the same data


def test_leftovers_include_a_breeder_attached_before_its_server_was_recorded(storage_rbd, settings, unique):
    """A cycle killed between attaching the breeder and writing its server record (or whose
    record another process removed) leaves a mounted image the runtime does not know.
    RBD only: a btrfs image is a directory, never mounted."""
    from tasks.runtime.local import LocalRuntime

    name = f"breeder-{unique}"
    storage_rbd.create(name, 1 << 30)
    storage_rbd.set_meta(name, catalog.META_KIND, catalog.BREEDER)
    storage_rbd.attach(name)
    with catalog.cycle_lock(settings.home_dir) as free:
        assert free
        removed = catalog.remove_leftovers(storage_rbd, LocalRuntime(settings, storage_rbd))
    assert name in removed and not storage_rbd.exists(name)


def test_goldens_are_flat_and_clones_have_depth_one(backend, storage, published):
    gen = published(backend)
    assert storage.parent(gen) is None
    probe = f"depth-probe-{backend}"
    storage.clone(gen, BASE_SNAPSHOT, probe)
    try:
        parent = storage.parent(probe)
        assert parent is not None and parent.image == gen
        assert storage.parent(parent.image) is None
    finally:
        storage.remove(probe)


def test_retiring_never_removes_a_generation_with_clones(backend, storage, published, shop_dump, settings):
    old = published(backend)
    env_name = f"pin-{backend}"
    assert run_phoenix("spawn", env_name, "--generation", old, "--recreate", backend=backend).returncode == 0
    # breed enough cycles to push `old` beyond keep_generations
    for _ in range(settings.keep_generations):
        res = run_phoenix("breed", "--source", str(shop_dump), backend=backend)
        assert res.returncode == 0, res.stderr[-1500:]
    gens = {g.id: g for g in catalog.generations(storage)}
    assert gens[old].state == catalog.RETIRING and gens[old].clones == 1
    assert storage.exists(old)
    assert run_phoenix("teardown", env_name, backend=backend).returncode == 0
    assert not storage.exists(old)  # removed with its last clone
    published_ids = [g.id for g in catalog.generations(storage) if g.state == catalog.PUBLISHED]
    assert len(published_ids) <= settings.keep_generations


@pytest.mark.parametrize("damage, expect", [
    ("truncate", "line"),
    ("syntax", "line"),
    ("compression", "zstd"),
])
def test_a_bad_dump_fails_the_cycle_with_where_it_broke(backend, storage, published, shop_dump, tmp_path, damage, expect):
    import zstandard

    before = published(backend)
    sql = zstandard.ZstdDecompressor().decompressobj().decompress(shop_dump.read_bytes())
    if damage == "truncate":
        bad = tmp_path / "bad.sql"
        bad.write_bytes(sql[: len(sql) // 2])
    elif damage == "syntax":
        bad = tmp_path / "bad.sql"
        bad.write_bytes(sql.replace(b"INSERT INTO `orders`", b"INSERT INTO orders VALUES ((", 1))
    else:
        bad = tmp_path / "bad.sql.zst"
        bad.write_bytes(sql[:4096])  # plain SQL named .zst
    res = run_phoenix("breed", "--source", str(bad), backend=backend)
    assert res.returncode != 0
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("phoenix: error:") and expect in last and str(bad) in last
    assert _state(storage) == {"latest": before, "breeders": [], "breeding": []}


def test_two_cycles_at_once_never_run_two_breeders(storage, published, shop_dump):
    published("local")
    seen: list[list[str]] = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            seen.append(catalog.images(storage, catalog.BREEDER))

    w = threading.Thread(target=watch)
    w.start()
    procs = [subprocess.Popen([str(p) for p in (".venv/bin/phoenix", "breed", "--source", shop_dump)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    stop.set()
    w.join()
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 3], outs
    rejected = outs[[p.returncode for p in procs].index(3)][1]
    assert "another breed cycle is running" in rejected
    assert max(len(s) for s in seen) <= 1
