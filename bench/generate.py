"""Benchmark: how fast `phoenix generate` writes a dump, per format.

    .venv/bin/python bench/generate.py            # ≥ 1 GB (scale 500) per format
    .venv/bin/python bench/generate.py --quick    # scale 40 (~90 MB)

Goal (issue 2): ≥ 1 GB of dump in ≤ 5 min on 2 cores.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tasks.sources.generate import generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--scale", type=int)
    args = ap.parse_args()
    scale = args.scale or (40 if args.quick else 500)
    rows = []
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        for ext in (".sql", ".sql.zst", ".sql.gz"):
            out = Path(tmp) / f"shop{ext}"
            t0 = time.monotonic()
            rep = generate(out, scale=scale)
            secs = time.monotonic() - t0
            rows.append((ext, rep.bytes_uncompressed, out.stat().st_size, sum(rep.rows.values()), secs))
            out.unlink()
    base = rows[0][4]
    print(f"scale {scale}")
    print(f"{'format':<9} {'SQL MB':>9} {'file MB':>9} {'rows':>11} {'seconds':>8} {'MB/s':>7} {'rows/s':>10} {'s per GB':>9} {'vs .sql':>8}")
    for ext, raw, size, nrows, secs in rows:
        print(f"{ext:<9} {raw / 1e6:>9.1f} {size / 1e6:>9.1f} {nrows:>11,} {secs:>8.1f} {raw / 1e6 / secs:>7.1f} "
              f"{nrows / secs:>10,.0f} {secs * 1e9 / raw:>9.1f} {secs / base:>7.2f}x")
    worst = max(secs * 1e9 / raw for _e, raw, _s, _n, secs in rows)
    print(f"goal: 1 GB in ≤ 300 s — slowest format needs {worst:.0f} s per GB: {'MET' if worst <= 300 else 'MISSED'}")


if __name__ == "__main__":
    main()
