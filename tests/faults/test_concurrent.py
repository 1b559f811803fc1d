"""20 CLI spawns and teardowns at once: every caller gets exit 0 and its JSON. A spawn or
teardown that worked exited 1 when another environment vanished under its listing of the
environments (issue 17, item 2)."""

from __future__ import annotations

import concurrent.futures as cf
import json

from tests.conftest import run_phoenix


def _spawn(name: str) -> dict:
    res = run_phoenix("spawn", name, "--json", "--ttl", "30m", timeout=600)
    assert res.returncode == 0, f"spawn {name}: exit {res.returncode}: {res.stderr[-1500:]}"
    info = json.loads(res.stdout.strip().splitlines()[-1])
    assert info["name"] == name and info["user"] and info["password"] and info["port"], info
    return info


def _teardown(name: str) -> str:
    res = run_phoenix("teardown", name, timeout=600)
    assert res.returncode == 0, f"teardown {name}: exit {res.returncode}: {res.stderr[-1500:]}"
    return res.stderr


def test_twenty_spawns_and_teardowns_at_once_all_succeed(local_golden, unique):
    first = [f"{unique}-a{i}" for i in range(10)]
    second = [f"{unique}-b{i}" for i in range(10)]
    with cf.ThreadPoolExecutor(20) as pool:
        list(pool.map(_teardown, first + second))  # from an earlier run of the suite
        spawned = dict(zip(first, pool.map(_spawn, first), strict=True))
        # The race of the issue: environments vanish while others are spawned and listed.
        gone = [pool.submit(_teardown, n) for n in first]
        new = {n: pool.submit(_spawn, n) for n in second}
        assert all(f"removed {n}" in f.result() for n, f in zip(first, gone, strict=True))
        spawned.update({n: f.result() for n, f in new.items()})
        ports = {info["port"] for info in spawned.values() if info["name"] in second}
        assert len(ports) == len(second)  # each its own server
        ls = json.loads(run_phoenix("ls", "--json").stdout)
        names = {e["name"] for e in ls["environments"]}
        assert set(second) <= names and not set(first) & names
        assert all(f"removed {n}" in out for n, out in zip(second, pool.map(_teardown, second), strict=True))
