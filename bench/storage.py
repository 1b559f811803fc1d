"""Benchmark: clone latency and first-attach latency of a clone, for a small and a large
image, on each storage backend, side by side with the ratio (goal: independent of size,
ratio ≤ 1.2).

    .venv/bin/python bench/storage.py --quick    # 100 MB and 1 GB of written data
    .venv/bin/python bench/storage.py            # 1 GB and 10 GB (RBD on a bluestore-on-file OSD)

Own state directory and ports (/var/tmp/phoenix-bench-storage): touches no other stack.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

HOME = Path("/var/tmp/phoenix-bench-storage")
MiB = 1 << 20


def _fill(path: Path, nbytes: int) -> None:
    block = os.urandom(4 * MiB)  # incompressible, and not zeros (which some layers skip)
    with open(path / "data.bin", "wb") as f:
        for _ in range(nbytes // len(block)):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    sizes = (100 * MiB, 1024 * MiB) if args.quick else (1024 * MiB, 10240 * MiB)
    from infra.local import btrfs, ceph
    from phoenix.config import load_settings
    from tasks.storage import open_storage

    settings = load_settings(home=HOME, local={"size": "40G"},
                             rbd={"mon_port": 6741, "pool": "bench", "objectstore": "memstore" if args.quick else "bluestore",
                                  "osd_size": "4G" if args.quick else "30G"})
    btrfs.up(settings)
    ceph.up(settings)
    results = []
    try:
        for backend in ("local", "rbd"):
            with open_storage(settings.model_copy(update={"storage": backend})) as st:
                for size in sizes:
                    name = f"bench-{size // MiB}"
                    if not st.exists(name):
                        st.create(name, size + 512 * MiB)
                        _fill(st.attach(name), size)
                        st.detach(name)
                        st.snapshot(name, "base")
                        st.protect(name, "base")
                    clones, attaches = [], []
                    for i in range(5):
                        c = f"{name}-c{i}"
                        t0 = time.monotonic()
                        st.clone(name, "base", c)
                        clones.append(time.monotonic() - t0)
                        t0 = time.monotonic()
                        st.attach(c)
                        attaches.append(time.monotonic() - t0)
                    for i in range(5):
                        st.detach(f"{name}-c{i}")
                        st.remove(f"{name}-c{i}")
                    results.append((backend, size, statistics.median(clones), statistics.median(attaches)))
    finally:
        ceph.down(settings)
        btrfs.down(settings)
    print(f"{'backend':<7} {'data':>8} {'clone ms':>9} {'attach ms':>10}")
    for b, size, c, a in results:
        print(f"{b:<7} {size // MiB:>6}MB {c * 1e3:>9.1f} {a * 1e3:>10.1f}")
    for b in ("local", "rbd"):
        small, large = [r for r in results if r[0] == b]
        print(f"{b}: large/small clone ratio {large[2] / small[2]:.2f}, attach ratio {large[3] / small[3]:.2f} "
              f"(goal ≤ 1.2)")


if __name__ == "__main__":
    main()
