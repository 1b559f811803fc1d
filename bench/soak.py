"""Benchmark: the soak — spawn → query → teardown, many times, through the real flows in one
long-lived process (as a worker's): nothing may grow. Loop devices, mounts and processes of
the state directory, and this process's open file descriptors and memory, before vs after.

    .venv/bin/python bench/soak.py              # 60 cycles on local btrfs
    .venv/bin/python bench/soak.py --quick      # 5 cycles

Runs in its own state directory and ports (/var/tmp/phoenix-soak) unless PHOENIX_HOME and the
ports are set; exits 1 if a count grew (issue 17: "Run the soak (60 cycles) as a benchmark").
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pymysql
from _stack import isolate, rss_mb, stop  # noqa: E402

HOME = Path(os.environ.get("PHOENIX_HOME", "/var/tmp/phoenix-soak"))
isolate(HOME, prefect_port=4241, mon_port=6741, from_shell=True)

from infra.local import btrfs  # noqa: E402
from infra.local import prefect as local_prefect  # noqa: E402
from phoenix.config import get_settings  # noqa: E402
from phoenix.proc import mounts  # noqa: E402

# Growth a long run may show without leaking: the allocator keeps freed arenas (RSS, MB).
RSS_SLACK_MB = 40


def _processes(home: str) -> list[int]:
    """Processes whose command line names the state directory (servers, rbd-fuse, …)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and int(d.name) != os.getpid():
            try:
                if home in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                    out.append(int(d.name))
            except OSError:
                continue
    return out


def snapshot(home: str, server_pids: frozenset[int]) -> dict[str, float]:
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout.splitlines()
    procs = [p for p in _processes(home) if p not in server_pids]
    return {
        "loop devices (state dir)": sum(home in ln for ln in loops),
        "mounts (state dir)": sum(m.path.startswith(home) for m in mounts()),
        "processes (state dir)": len(procs),
        "open fds (this process)": len(os.listdir("/proc/self/fd")),
        "threads (this process)": len(os.listdir("/proc/self/task")),
        "RSS MB (this process)": round(rss_mb(), 1),
    }


def _golden() -> str:
    from flows.breed import breed
    from tasks import catalog
    from tasks.sources.generate import generate
    from tasks.storage import open_storage

    with open_storage(get_settings()) as st:
        gen = catalog.latest(st)
    if gen is None:
        dump = HOME / "soak-shop.sql.zst"
        if not dump.exists():
            generate(dump, scale=1)
        gen = breed(source=str(dump))["golden"]
    return gen


def _cycle(i: int) -> float:
    from flows.spawn import spawn
    from flows.teardown import teardown
    from tasks.runtime.factory import open_runtime
    from tasks.storage import open_storage

    t0 = time.monotonic()
    name = f"soak-{i % 3}"
    info = spawn(name=name, ttl="10m")
    with open_storage(get_settings()) as st, open_runtime(get_settings(), st) as rt:
        creds = rt.credentials(info["id"])
    assert creds is not None
    conn = pymysql.connect(host=info["host"], port=info["port"], user=info["user"], password=creds.password,
                           database=info["database"], connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW TABLES")
            assert cur.fetchall()
    finally:
        conn.close()
    assert teardown(name=name)["removed"]
    return time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cycles", type=int, default=None)
    ap.add_argument("--keep", action="store_true", help="leave the stack running")
    args = ap.parse_args()
    cycles = args.cycles or (5 if args.quick else 60)
    settings = get_settings()
    started_stack = not local_prefect.status(settings)
    btrfs.up(settings)
    local_prefect.up(settings)
    for key, value in local_prefect.client_env(settings).items():
        os.environ.setdefault(key, value)
    home = str(settings.home_dir)
    _golden()
    # The servers that ran before (other environments of this home) are not the soak's.
    before_servers = frozenset(_processes(home))
    _cycle(0)  # warm-up: imports, the Prefect client's connection pool, caches
    before = snapshot(home, before_servers)
    times = [_cycle(i) for i in range(1, cycles + 1)]
    after = snapshot(home, before_servers)

    print(f"soak: {cycles} spawn → query → teardown cycles, p50 {sorted(times)[len(times) // 2]:.2f} s, "
          f"max {max(times):.2f} s, total {sum(times):.0f} s")
    print(f"{'':28} {'before':>10} {'after':>10} {'delta':>8}")
    grew = []
    for key in before:
        delta = after[key] - before[key]
        slack = RSS_SLACK_MB if key.startswith("RSS") else 0
        flag = "  GREW" if delta > slack else ""
        if flag:
            grew.append(key)
        print(f"{key:28} {before[key]:>10} {after[key]:>10} {delta:>+8.1f}{flag}")
    if started_stack and not args.keep:
        stop(HOME)
    return 1 if grew else 0


if __name__ == "__main__":
    sys.exit(main())
