"""Goldens that never passed the forensic gate, and `phoenix gate --image`, on both backends.

The goldens here are bred by the current cycle from the shop dump with a copy of the shop
rules in which `support_tickets` is truncated: on this branch names inside ticket bodies
are not scrubbed yet, so the shop rules themselves fail the forensic gate (and so do a few
original streets in addresses.ibd: the copy writes a fixed street). A golden "from
before the forensic gate" is a copy of one with its `phoenix.forensic` key removed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from anonymization import load_rules
from anonymization.sampling import baseline_from_dump
from phoenix.names import env_id, image_name
from tasks import catalog, environments
from tasks.runtime.local import LocalRuntime
from tasks.schema import BASE_SNAPSHOT, Meta
from tasks.sources.restore import dump_blocks
from tests.conftest import REPO, run_phoenix

META_CREATED, META_FORENSIC, META_KIND, META_STATE = Meta.CREATED, Meta.FORENSIC, Meta.KIND, Meta.STATE

_OLD = "2000-01-01T00:00:00+00:00"  # older than any real golden: `latest` never moves to a test copy


@pytest.fixture(scope="session")
def clean_rules(tmp_path_factory) -> Path:
    rules = yaml.safe_load((REPO / "anonymization" / "rules" / "shop.yaml").read_text())
    rules["tables"]["support_tickets"] = {"truncate": True}
    # Not personal data on its own once the rest is pseudonymized; on this branch a few
    # original streets survive in addresses.ibd and fail the cycle's own forensic gate.
    rules["tables"]["addresses"]["columns"]["street"] = {"strategy": "fixed", "args": {"value": "1 Test Street"}}
    path = tmp_path_factory.mktemp("rules") / "shop-no-tickets.yaml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def bred(settings, shop_dump, clean_rules, btrfs_pool, ceph_cluster):
    """backend -> a published golden that passed the forensic gate (bred here if there is none)."""
    from tasks.storage import open_storage

    def verified_latest(backend: str) -> str:
        for _ in range(2):
            with open_storage(settings.model_copy(update={"storage": backend})) as st:
                gens = [g for g in catalog.generations(st) if g.state == catalog.PUBLISHED
                        and (st.get_meta(g.id, META_FORENSIC) or "").startswith("passed")]
            if gens:
                return gens[0].id
            res = run_phoenix("breed", "--source", str(shop_dump), "--rules", str(clean_rules), backend=backend)
            assert res.returncode == 0, res.stderr[-2000:]
        raise AssertionError("the breed published no verified golden")

    return verified_latest


def _copy_golden(storage, src: str, name: str, plant: bytes | None = None, plant_as: str = "leak.txt") -> None:
    """A published golden `name` made of src@base, without the forensic key; optionally a
    file of `plant` written into it (a careless step of an old cycle)."""
    storage.clone(src, BASE_SNAPSHOT, name)
    if plant is not None:
        path = storage.attach(name) / plant_as
        with open(path, "wb") as f:
            f.write(plant)
            f.flush()
            os.fsync(f.fileno())
        storage.detach(name)
    storage.snapshot(name, BASE_SNAPSHOT)
    storage.protect(name, BASE_SNAPSHOT)
    for k, v in storage.list_meta(src).items():
        storage.set_meta(name, k, v)
    storage.remove_meta(name, META_FORENSIC)
    storage.set_meta(name, META_CREATED, _OLD)
    storage.set_meta(name, META_KIND, catalog.GOLDEN)
    storage.set_meta(name, META_STATE, catalog.PUBLISHED)


def _last_line(res) -> str:
    return res.stderr.strip().splitlines()[-1]


def test_an_unverified_golden_is_marked_and_spawn_refuses_it_unless_allowed(backend, bred, storage, settings,
                                                                            unique):
    gen = bred(backend)
    old, name = f"golden-{unique}-{backend}", f"{unique}-{backend}-old"
    runtime = LocalRuntime(settings, storage)
    _copy_golden(storage, gen, old)
    try:
        data = json.loads(run_phoenix("ls", "--json", backend=backend).stdout)
        by_id = {g["id"]: g for g in data["generations"]}
        assert by_id[old]["verified"] is False and by_id[gen]["verified"] is True
        assert by_id[gen]["latest"] and not by_id[old]["latest"]
        table = run_phoenix("ls", backend=backend, env={"COLUMNS": "250"}).stdout
        assert "UNVERIFIED" in table and "passed" in table

        res = run_phoenix("spawn", name, "--generation", old, backend=backend)
        assert res.returncode == 2
        assert _last_line(res) == (
            f"phoenix: error: generation {old} has not passed the forensic gate (published before it existed): "
            "re-breed with `phoenix breed`, or pass --allow-unverified to clone it anyway "
            "(its redo logs may hold production data)")
        assert not storage.exists(image_name(env_id(name))) and storage.children(old, BASE_SNAPSHOT) == []

        res = run_phoenix("spawn", name, "--generation", old, "--allow-unverified", "--json", backend=backend)
        assert res.returncode == 0, res.stderr[-1500:]
        assert json.loads(res.stdout.strip().splitlines()[-1])["generation"] == old
        again = run_phoenix("spawn", name, "--generation", old, backend=backend)  # exists already: found, not cloned
        assert again.returncode == 0, again.stderr[-1500:]

        res = run_phoenix("reset", name, backend=backend)  # a reset re-clones: refused the same way
        assert res.returncode == 2 and "--allow-unverified" in _last_line(res)
        res = run_phoenix("reset", name, "--allow-unverified", backend=backend)
        assert res.returncode == 0, res.stderr[-1500:]
    finally:
        environments.teardown(settings, storage, runtime, name)
        catalog.remove_generation(storage, old)


def _unchanged(storage, gen: str) -> tuple:
    return storage.list_meta(gen), storage.snapshots(gen), storage.is_protected(gen, BASE_SNAPSHOT)


def test_gate_image_passes_on_a_golden_of_the_current_cycle_and_changes_nothing(backend, bred, storage,
                                                                               shop_dump):
    gen = bred(backend)
    before = _unchanged(storage, gen)
    res = run_phoenix("gate", "--image", gen, "--source", str(shop_dump), backend=backend)
    assert res.returncode == 0, res.stderr[-1500:]
    assert "Forensic gate: PASSED" in res.stdout and f"{gen}@{BASE_SNAPSHOT}" in res.stdout
    assert _unchanged(storage, gen) == before


def test_gate_image_finds_a_planted_leak_and_never_prints_a_value(backend, bred, storage, shop_dump, settings,
                                                                  unique):
    gen = bred(backend)
    originals, _columns = baseline_from_dump(dump_blocks(shop_dump), load_rules(REPO / "anonymization/rules/shop.yaml"),
                                             b"k" * 32).needles.items()
    emails = [v for v in originals if b"@" in v][:40]
    assert len(emails) == 40
    old = f"golden-{unique}-{backend}"
    _copy_golden(storage, gen, old, plant=b"\n".join(emails) * 32)
    try:
        res = run_phoenix("gate", "--image", old, "--source", str(shop_dump), backend=backend)
        assert res.returncode == 4, res.stderr[-1500:]
        line = _last_line(res)
        assert line.startswith(f"phoenix: error: forensic gate failed on {old}@{BASE_SNAPSHOT} (")
        assert "re-breed with `phoenix breed`" in line
        place = "leak.txt" if backend == "local" else f"{settings.rbd.pool}/{old}@{BASE_SNAPSHOT}"
        assert place in line and "Forensic gate: FAILED" in res.stdout
        for value in originals:  # no original in clear, anywhere in what the user sees
            text = value.decode("utf-8", errors="ignore")
            assert text not in res.stdout and text not in res.stderr
    finally:
        catalog.remove_generation(storage, old)


@pytest.mark.parametrize("args", [(), ("--dsn", "mysql://root@localhost/x", "--image", "latest")])
def test_gate_needs_exactly_one_of_dsn_and_image(args):
    res = run_phoenix("gate", *args)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "phoenix: error: phoenix gate: pass exactly one of --dsn (the SQL gate on a database) or "
        "--image GENERATION (the forensic gate on a golden)"]


def test_ci_spawn_passes_allow_unverified_to_the_deployment(settings, prefect_server, bred, storage_local, unique):
    """Through the Prefect API and the worker: refused (the run fails, exit 5, naming the flag), then allowed."""
    from infra.local import worker

    worker.up(settings)
    gen, old, name = bred("local"), f"golden-{unique}", f"{unique}-ci"
    _copy_golden(storage_local, gen, old)
    # The newest, so the worker's scheduled reap (every 300 s: retire beyond the 2 newest) cannot
    # remove it between the two runs — it did once ("generation … does not exist").
    storage_local.set_meta(old, META_CREATED, catalog.utc_iso())
    try:
        res = run_phoenix("ci", "spawn", name, "--generation", old, "--ttl", "1h", timeout=300)
        assert res.returncode == 5 and "has not passed the forensic gate" in _last_line(res)
        assert "--allow-unverified" in _last_line(res)
        res = run_phoenix("ci", "spawn", name, "--generation", old, "--ttl", "1h", "--allow-unverified", timeout=300)
        assert res.returncode == 0, res.stderr[-1500:]
        assert json.loads(res.stdout.strip().splitlines()[-1])["generation"] == old
    finally:
        environments.teardown(settings, storage_local, LocalRuntime(settings, storage_local), name)
        catalog.remove_generation(storage_local, old)
