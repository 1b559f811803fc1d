"""Benchmark: the whole phoenix cycle vs a raw `mariadb < dump` restore, step by step, on
each backend; and the restore profile vs default server settings, side by side.

    .venv/bin/python bench/breed.py --quick     # scale 20 (~45 MB of SQL)
    .venv/bin/python bench/breed.py             # scale 500 (~1 GB of SQL)
    .venv/bin/python bench/breed.py --incremental [--quick]   # incremental vs full cycles (bench/_incremental.py)
    .venv/bin/python bench/breed.py --incremental --scales 500  # one size only (1 GB)

Goals: the cycle ≤ 1.3× the raw restore (issue 4); the clean-up that leaves no original in
any byte plus the forensic scan ≤ 10 % of the cycle (issue 11). Own state directory and ports.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from _stack import isolate, stop, timed_restore  # noqa: E402

HOME = Path("/var/tmp/phoenix-bench-breed")
isolate(HOME, prefect_port=4232, mon_port=6732)

from phoenix.config import get_settings  # noqa: E402
from tasks.sources.generate import generate  # noqa: E402


def raw_restore(dump: Path, profile: str, jobs: int = 0) -> float:
    return timed_restore(HOME, dump, profile, jobs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--backends", default="local,rbd")
    ap.add_argument("--incremental", action="store_true", help="incremental vs full cycles from a live source")
    ap.add_argument("--changes", type=int, default=0, help="changed customers (default: 1 %% of the smaller size)")
    ap.add_argument("--scales", default="", help="with --incremental: the sizes, e.g. 500 (1 GB) or 500,2000")
    args = ap.parse_args()
    if args.incremental:
        return _incremental(args)
    scale = 20 if args.quick else 500
    from infra.local import btrfs, ceph
    from infra.local import prefect as local_prefect

    settings = get_settings()
    btrfs.up(settings)
    local_prefect.up(settings)
    os.environ.update(local_prefect.client_env(settings))
    dump = HOME / f"shop-{scale}.sql.zst"
    if not dump.exists():
        generate(dump, scale=scale)
    raw_default = raw_restore(dump, "default")
    raw_fast = raw_restore(dump, "restore")
    jobs = settings.restore_jobs
    parallel = raw_restore(dump, "restore", jobs=jobs)
    from flows.breed import breed

    print(f"dump: scale {scale}, {dump.stat().st_size / 1e6:,.0f} MB compressed")
    print(f"raw `mariadb < dump`: default settings {raw_default:.1f} s, restore profile {raw_fast:.1f} s "
          f"(profile speed-up {raw_default / raw_fast:.2f}x); Phoenix's restore over {jobs} connections "
          f"{parallel:.1f} s ({raw_default / parallel:.2f}x faster than the raw default restore)")
    for backend in args.backends.split(","):
        os.environ["PHOENIX_STORAGE"] = backend
        get_settings.cache_clear()
        if backend == "rbd":
            ceph.up(get_settings())
        t0 = time.monotonic()
        result = breed(source=str(dump))
        total = time.monotonic() - t0
        steps = " · ".join(f"{k} {v:.1f}" for k, v in result["steps"].items())
        clean = {k: result["steps"].get(k, 0.0) for k in ("seal", "zero_free", "forensic_gate")}
        scan = result["forensic"]
        print(f"{backend}: whole cycle {total:.1f} s = {total / raw_default:.2f}x the raw default restore "
              f"({total / raw_fast:.2f}x the raw restore-profile one); steps: {steps}")
        print(f"{backend}: no-data-at-rest clean-up + forensic scan {sum(clean.values()):.1f} s = "
              f"{100 * sum(clean.values()) / total:.1f}% of the cycle (seal {clean['seal']:.1f} · zero_free "
              f"{clean['zero_free']:.1f} · scan {clean['forensic_gate']:.1f}); scanned {scan['bytes_scanned'] / 1e6:,.0f} MB "
              f"at {scan['mb_per_s']:,.0f} MB/s, {scan['values']:,} originals, passed={scan['passed']}")


def _incremental(args) -> None:
    from _incremental import run

    from infra.local import btrfs, ceph
    from infra.local import prefect as local_prefect

    settings = get_settings()
    btrfs.up(settings)
    local_prefect.up(settings)
    os.environ.update(local_prefect.client_env(settings))
    if "rbd" in args.backends:
        ceph.up(settings)
    if args.scales:
        scales = [int(x) for x in args.scales.split(",")]
    else:
        scales = [20, 80] if args.quick else [500, 2000]
    run(HOME, scales, args.backends.split(","), args.changes or 10 * min(scales))  # 1 % of the customers


if __name__ == "__main__":
    try:
        main()
    finally:  # the benchmark's own stack goes down with it, environments included
        stop(HOME)
