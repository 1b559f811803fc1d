"""Benchmark: spawn latency (call → a real query answers) for a small and a large golden,
on each storage backend, next to the old way (restoring the dump into a fresh server);
memory per idle environment; and a density run.

    .venv/bin/python bench/spawn.py --quick     # goldens from scale 5 and 50 dumps, 10 spawns each, density 20
    .venv/bin/python bench/spawn.py             # scale 50 (≈100 MB) and 500 (≈1 GB), density 50
    .venv/bin/python bench/spawn.py --runtime kubernetes   # the local cluster's real node (bench/_spawn_kube.py)
    .venv/bin/python bench/spawn.py --quick --only ci      # CI's path alone, with where its seconds go

Runs in its own state directory and ports (/var/tmp/phoenix-bench), so it touches no other stack.
Goals (issue 6): p50 ≤ 1.5 s, p50 ratio large/small ≤ 1.2, ≥ 50 environments answering at once.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import _spawn_ci  # noqa: E402
import pymysql
from _stack import isolate, percentile, rss_mb, stop  # noqa: E402

HOME = Path("/var/tmp/phoenix-bench")
isolate(HOME, prefect_port=4231, mon_port=6731)

from phoenix.config import get_settings  # noqa: E402
from tasks import catalog, environments  # noqa: E402
from tasks.runtime.local import LocalRuntime  # noqa: E402
from tasks.runtime.mariadb import MariaDBServer, free_port  # noqa: E402
from tasks.sources.generate import generate  # noqa: E402
from tasks.sources.restore import restore  # noqa: E402
from tasks.storage import open_storage  # noqa: E402


def _answer(info) -> None:
    creds_pw = info[1]
    conn = pymysql.connect(host=info[0].host, port=info[0].port, user=info[0].user, password=creds_pw,
                           database=info[0].database)
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM customers")
    conn.close()


def _kubernetes(density: int) -> None:
    import _spawn_kube

    from infra.local import btrfs
    from infra.local import prefect as local_prefect

    os.environ.update({"PHOENIX_STORAGE": "local", "PHOENIX_KUBERNETES__API_PORT": "6433",
                       "PHOENIX_KUBERNETES__ETCD_PORT": "2333"})
    get_settings.cache_clear()
    settings = get_settings()
    btrfs.up(settings)
    local_prefect.up(settings)
    os.environ.update(local_prefect.client_env(settings))
    from flows.breed import breed

    dump = HOME / "shop-50.sql.zst"
    if not dump.exists():
        generate(dump, scale=50)
    gen = breed(source=str(dump))["golden"]
    for line in _spawn_kube.run(settings, gen, _answer, spawns=10, density=density):
        print(line)


def _latencies(backends: list[str], scales: tuple[int, int], dumps: dict[int, Path], spawns: int) -> list[tuple]:
    """Spawn → a query answers, per backend and golden size, with the large/small p50 ratio."""
    from flows.breed import breed
    from infra.local import ceph

    rows = []
    for backend in backends:
        os.environ["PHOENIX_STORAGE"] = backend
        get_settings.cache_clear()
        settings = get_settings()
        if backend == "rbd":
            ceph.up(settings)
        lat: dict[int, list[float]] = {}
        for s in scales:
            gen = breed(source=str(dumps[s]))["golden"]
            with open_storage(settings) as st:
                rt = LocalRuntime(settings, st)
                size = st.usage(gen)
                times = []
                for i in range(spawns):
                    t0 = time.monotonic()
                    info = environments.spawn(settings, st, rt, f"bench-{backend}-{s}-{i}", gen, "1h")
                    _answer((info, rt.credentials(info.id).password))
                    times.append(time.monotonic() - t0)
                for i in range(spawns):
                    environments.teardown(settings, st, rt, f"bench-{backend}-{s}-{i}")
            lat[s] = times
            rows.append((backend, s, size, statistics.median(times), percentile(times, 0.95)))
        small, large = scales
        rows.append((backend, "ratio", 0, statistics.median(lat[large]) / statistics.median(lat[small]), 0))
    return rows


def _ci(spawns: int) -> list[str]:
    """CI's path: the `spawn` deployment through the Prefect API and a worker (bench/_spawn_ci.py)."""
    from infra.local import worker

    os.environ["PHOENIX_STORAGE"] = "local"
    get_settings.cache_clear()
    worker.up(get_settings())
    return list(_spawn_ci.bench(spawns))


def _old_way(dump: Path) -> float:
    """Restore the large dump into a fresh server: what a shared integration database costs."""
    tmp = HOME / "oldway"
    server = MariaDBServer(tmp / "data", tmp / "run", free_port(), "restore")
    server.initialize()
    server.start()
    server.wait_ready()
    t0 = time.monotonic()
    restore(str(dump), server.admin(), "app")
    old = time.monotonic() - t0
    server.stop()
    return old


def _density(density: int) -> str:
    """Many idle environments at once on the local backend: how many answer, RSS and disk each."""
    os.environ["PHOENIX_STORAGE"] = "local"
    get_settings.cache_clear()
    settings = get_settings()
    with open_storage(settings) as st:
        rt = LocalRuntime(settings, st)
        gen = catalog.latest(st)
        infos = []
        for i in range(density):
            info = environments.spawn(settings, st, rt, f"dense-{i}", gen, "1h")
            infos.append((info, rt.credentials(info.id).password))
        answering = 0
        for info in infos:
            try:
                _answer(info)
                answering += 1
            except pymysql.MySQLError:
                pass
        rss = [rss_mb(rt.get(i.id).pid) for i, _ in infos]
        used = [st.usage(f"env-{i.id}") for i, _ in infos]
        for i, _ in infos:
            environments.teardown(settings, st, rt, i.name)
    return (f"density: {answering}/{density} environments answering at once; idle RSS {statistics.mean(rss):.0f} MB "
            f"each, disk {statistics.mean(used) / 1e6:.1f} MB each")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--backends", default="local,rbd")
    ap.add_argument("--density", type=int, help="Environments up at once (default 20 quick, 50 full).")
    ap.add_argument("--runtime", choices=("local", "kubernetes"), default="local",
                    help="kubernetes: spawn on the local cluster's node (no other local node may run).")
    ap.add_argument("--only", choices=("ci",), help="ci: only CI's path through the Prefect API and a worker.")
    args = ap.parse_args()
    if args.runtime == "kubernetes":
        return _kubernetes(args.density or 20)
    scales = (5, 50) if args.quick else (50, 500)
    spawns, density = (10, 20) if args.quick else (10, 50)
    from infra.local import btrfs
    from infra.local import prefect as local_prefect

    base = get_settings()
    btrfs.up(base)
    local_prefect.up(base)
    os.environ.update(local_prefect.client_env(base))
    dumps = {s: HOME / f"shop-{s}.sql.zst" for s in scales}
    for s, path in dumps.items():
        if not path.exists():
            generate(path, scale=s)
    if args.only == "ci":
        from flows.breed import breed

        os.environ["PHOENIX_STORAGE"] = "local"
        get_settings.cache_clear()
        breed(source=str(dumps[scales[0]]))
        print("\n".join(_ci(spawns)))
        return
    rows = _latencies(args.backends.split(","), scales, dumps, spawns)
    ci, old, dense = _ci(spawns), _old_way(dumps[scales[1]]), _density(args.density or density)
    print(f"{'backend':<8} {'golden':<7} {'golden MB':>10} {'p50 s':>7} {'p95 s':>7}")
    for b, s, size, p50, p95 in rows:
        if s == "ratio":
            print(f"{b:<8} {'large/small p50 ratio':<26} {p50:>7.2f}")
        else:
            print(f"{b:<8} {s:<7} {size / 1e6:>10,.0f} {p50:>7.2f} {p95:>7.2f}")
    print(f"old way: restore the scale-{scales[1]} dump into a fresh server: {old:.1f} s "
          f"({old / min(r[3] for r in rows if r[1] != 'ratio'):,.0f}x the best spawn p50)")
    print("\n".join(ci))
    print(dense)


if __name__ == "__main__":
    try:
        main()
    finally:  # the benchmark's own stack goes down with it, environments included
        stop(HOME)
