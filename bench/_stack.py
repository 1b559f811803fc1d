"""What the benchmarks that run flows share: an isolated state directory with its own
ports (so a benchmark never touches the demo's or the tests' stack), and its teardown."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

_HELD = contextlib.ExitStack()  # the home's lock, for the life of the process


def isolate(home: Path, prefect_port: int, mon_port: int, from_shell: bool = False) -> None:
    """Call before importing anything that reads the settings. The home, ports and key are the
    benchmark's whatever the shell holds (a shell set up for the tests would otherwise run it
    in the tests' home with their key), unless `from_shell`; sizes can always be raised there."""
    own = {"PHOENIX_HOME": str(home), "PHOENIX_PREFECT__PORT": str(prefect_port),
           "PHOENIX_RBD__MON_PORT": str(mon_port), "PHOENIX_RBD__POOL": "bench",
           "PHOENIX_ANON_KEY": "bench-key-0123456789abcdef"}
    for key, value in {**own, "PHOENIX_RBD__OSD_SIZE": "12G", "PHOENIX_IMAGE_SIZE": "8G"}.items():
        if from_shell or key not in own:
            os.environ.setdefault(key, value)
        else:
            os.environ[key] = value
    from phoenix.locks import file_lock

    if not _HELD.enter_context(file_lock(Path(os.environ["PHOENIX_HOME"]) / "bench.lock", wait=False)):
        # a second benchmark in the same home would share (and remove) the first one's servers
        sys.exit(f"phoenix: error: another benchmark runs in {os.environ['PHOENIX_HOME']}: wait for it to end")


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p * (len(xs) - 1))))]


def rss_mb(pid: int | str = "self") -> float:
    """A process's resident memory; 0 for one without (a kernel thread)."""
    with open(f"/proc/{pid}/status") as f:
        return next((int(ln.split()[1]) / 1024 for ln in f if ln.startswith("VmRSS:")), 0.0)


def stop(home: Path) -> None:
    """Stop the benchmark's stack; `down` stops every server of the home first."""
    from infra.local import stack
    from phoenix.config import get_settings

    get_settings.cache_clear()
    stack.down(get_settings(), progress=lambda _m: None)


def timed_restore(home: Path, dump: Path, profile: str = "restore", jobs: int = 0) -> float:
    """Seconds to restore `dump` into a fresh server of `profile`: `mariadb < dump` (jobs=0), or
    Phoenix's restore over `jobs` connections."""
    import shutil
    import subprocess
    import time

    from tasks.runtime.mariadb import MariaDBServer, client_binary, free_port
    from tasks.sources.restore import restore

    tmp = home / f"raw-{profile}-{jobs}"
    shutil.rmtree(tmp, ignore_errors=True)
    server = MariaDBServer(tmp / "data", tmp / "run", free_port(), profile)
    server.initialize()
    server.start()
    server.wait_ready()
    try:
        subprocess.run([client_binary(), f"--socket={server.socket}", "-uroot", "-e", "CREATE DATABASE app"], check=True)
        t0 = time.monotonic()
        if jobs:
            restore(str(dump), server.admin(), "app", jobs=jobs)
            return time.monotonic() - t0
        zstd = subprocess.Popen(["zstd", "-dc", str(dump)], stdout=subprocess.PIPE)
        subprocess.run([client_binary(), f"--socket={server.socket}", "-uroot", "app"], stdin=zstd.stdout, check=True)
        zstd.wait()
        return time.monotonic() - t0
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
