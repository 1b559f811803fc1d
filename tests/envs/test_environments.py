"""Environments on demand against real MariaDB servers on both storage backends."""

from __future__ import annotations

import concurrent.futures as cf
import json
from datetime import timedelta

import pymysql
import pytest

from phoenix.names import env_id, image_name
from tasks import catalog, environments
from tasks.runtime.local import LocalRuntime
from tests.conftest import run_phoenix


def _spawn_json(name: str, backend: str, *extra: str) -> dict:
    res = run_phoenix("spawn", name, "--json", *extra, backend=backend)
    assert res.returncode == 0, res.stderr[-1500:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def _conn(info: dict):
    return pymysql.connect(host=info["host"], port=info["port"], user=info["user"], password=info["password"],
                           database=info["database"], autocommit=True)


def _q(info: dict, sql: str):
    conn = _conn(info)
    with conn.cursor() as cur:
        cur.execute(sql)
        rows = cur.fetchall()
    conn.close()
    return rows


@pytest.fixture
def runtime(settings, storage):
    return LocalRuntime(settings, storage)


@pytest.fixture
def names(backend, unique, runtime, storage, settings):
    made: list[str] = []

    def name(suffix: str) -> str:
        n = f"{unique}-{backend}-{suffix}"
        made.append(n)
        return n

    yield name
    for n in made:
        environments.teardown(settings, storage, runtime, n)


def test_spawn_serves_the_golden_and_writes_are_isolated(backend, published, names, storage):
    gen = published(backend)
    a, b = _spawn_json(names("a"), backend), _spawn_json(names("b"), backend)
    assert a["generation"] == gen and set(a) == {"name", "id", "generation", "host", "port", "user", "password",
                                                  "database", "databases", "expires_at"}  # fields only ever added
    assert a["password"] != b["password"] and a["port"] != b["port"]
    assert _q(a, "SELECT COUNT(*) FROM customers") == _q(b, "SELECT COUNT(*) FROM customers")
    _q(a, "UPDATE customers SET first_name = 'only-in-a' WHERE id = 1")
    assert _q(a, "SELECT first_name FROM customers WHERE id = 1")[0][0] == "only-in-a"
    assert _q(b, "SELECT first_name FROM customers WHERE id = 1")[0][0] != "only-in-a"
    c = _spawn_json(names("c"), backend)  # a fresh clone shows the golden is untouched
    assert _q(c, "SELECT first_name FROM customers WHERE id = 1")[0][0] != "only-in-a"
    # each environment's account only opens its own server
    with pytest.raises(pymysql.MySQLError):
        pymysql.connect(host=b["host"], port=b["port"], user=a["user"], password=a["password"])


def test_same_name_twice_is_the_same_environment(backend, published, names):
    published(backend)
    n = names("same")
    first, second = _spawn_json(n, backend), _spawn_json(n, backend)
    # the same environment, account and password; only the expiry restarted (a re-spawn extends it)
    assert {k: v for k, v in first.items() if k != "expires_at"} == {k: v for k, v in second.items() if k != "expires_at"}
    assert second["expires_at"] >= first["expires_at"]


def test_ten_names_concurrently_plus_duplicates_give_ten_environments(backend, published, names, storage, runtime):
    published(backend)
    wanted = [names(f"c{i}") for i in range(10)]
    calls = wanted + wanted[:5]
    with cf.ThreadPoolExecutor(max_workers=15) as pool:
        infos = list(pool.map(lambda n: _spawn_json(n, backend), calls))
    ids = {i["id"] for i in infos}
    assert len(ids) == 10
    for info in infos:
        assert _q(info, "SELECT 1") == ((1,),)
    mine = [img for img in catalog.images(storage, catalog.ENV) if img.removeprefix("env-") in ids]
    assert len(mine) == 10


def test_teardown_twice_says_it_was_not_there(backend, published, names, storage, runtime):
    published(backend)
    n = names("td")
    info = _spawn_json(n, backend)
    res = run_phoenix("teardown", n, backend=backend)
    assert res.returncode == 0 and "removed" in res.stderr
    assert not storage.exists(image_name(info["id"])) and runtime.get(info["id"]) is None
    res = run_phoenix("teardown", n, backend=backend)
    assert res.returncode == 0 and "was not there" in res.stderr


def test_reset_discards_a_written_row_and_keeps_credentials(backend, published, names):
    published(backend)
    n = names("reset")
    info = _spawn_json(n, backend)
    before = _q(info, "SELECT COUNT(*) FROM orders")[0][0]
    _q(info, "DELETE FROM order_items WHERE order_id = 1")
    _q(info, "DELETE FROM payments WHERE order_id = 1")
    _q(info, "DELETE FROM orders WHERE id = 1")
    assert _q(info, "SELECT COUNT(*) FROM orders")[0][0] == before - 1
    res = run_phoenix("reset", n, backend=backend)
    assert res.returncode == 0, res.stderr[-1000:]
    after = _spawn_json(n, backend)
    assert after["password"] == info["password"] and after["port"] == info["port"]
    assert _q(after, "SELECT COUNT(*) FROM orders")[0][0] == before


def test_an_expired_environment_is_reaped(backend, published, names, settings, storage, runtime):
    published(backend)
    n = names("exp")
    info = _spawn_json(n, backend, "--ttl", "1h")
    rep = environments.reap(settings, storage, runtime, now=catalog.now_utc() + timedelta(hours=2))
    assert n in rep.expired
    assert not storage.exists(image_name(info["id"])) and runtime.get(info["id"]) is None


def test_a_spawn_that_fails_after_the_clone_leaves_nothing(backend, published, names, settings, storage, runtime,
                                                           monkeypatch):
    published(backend)
    n = names("fail")
    eid = env_id(n)
    # The server cannot start: an unknown option makes mariadbd exit at once.
    monkeypatch.setitem(__import__("tasks.runtime.mariadb", fromlist=["PROFILES"]).PROFILES, "environment",
                        ["--no-such-option-phoenix-test"])
    with pytest.raises(Exception, match="died while starting|did not answer"):
        environments.spawn(settings, storage, runtime, n)
    assert not storage.exists(image_name(eid))
    assert runtime.get(eid) is None


def test_unknown_generation_is_a_clear_error(backend, published):
    published(backend)
    res = run_phoenix("spawn", "whatever", "--generation", "golden-19990101T000000Z", backend=backend)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines()[-1] == (
        "phoenix: error: generation 'golden-19990101T000000Z' does not exist: see `phoenix ls` for the published ones")


def test_ls_json_shape(backend, published, names):
    gen = published(backend)
    info = _spawn_json(names("ls"), backend)
    res = run_phoenix("ls", "--json", backend=backend)
    data = json.loads(res.stdout)
    g = next(x for x in data["generations"] if x["id"] == gen)
    assert set(g) == {"id", "state", "latest", "created", "size_bytes", "clones", "verified"} and g["clones"] >= 1
    e = next(x for x in data["environments"] if x["id"] == info["id"])
    assert e["port"] == info["port"] and e["used_bytes"] < g["size_bytes"]
    assert "password" not in res.stdout


def test_a_reaper_on_one_backend_leaves_the_other_backends_servers_alone(settings, storage_local, storage_rbd, unique):
    """One home, both backends (as here): the local reaper must not take a server whose
    image lives in Ceph for an orphan — it once stopped a running RBD breeder mid-cycle."""
    name = f"{unique}-srv"
    rbd_runtime, local_runtime = LocalRuntime(settings, storage_rbd), LocalRuntime(settings, storage_local)
    storage_rbd.create(name, 1 << 30)
    try:
        rbd_runtime.start(name, name, profile="environment")
        rbd_runtime.wait_ready(name)
        rep = environments.reap(settings, storage_local, local_runtime)
        assert name not in rep.orphan_servers
        assert rbd_runtime.get(name).state == "running" and storage_rbd.attached(name)
        assert name in [ep.name for ep in rbd_runtime.list()]
        assert name not in [ep.name for ep in local_runtime.list()]
    finally:
        rbd_runtime.remove(name)
        storage_rbd.remove(name)
