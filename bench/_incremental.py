"""`bench/breed.py --incremental`: a live source with binary logging at two sizes; on each,
a full cycle, then the same number of changed customers (`phoenix churn`), then an
incremental cycle and a full one of the same source state — side by side, step by step.

The rules: the shop's, with support_tickets truncated (see `_rules_without_scrub`).
Goals (issue 16): the incremental cycle ≤ 10 % of the full one at the larger size; the
larger / smaller incremental time ≤ 1.3 at the same number of changes; the apply ≥ 20,000
changed rows/s.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import subprocess
import time
from pathlib import Path

PASSWORD = "bench-reader-pw"
BINLOG = ["--log-bin=mysql-bin", "--server-id=1", "--binlog-format=ROW", "--binlog-row-image=FULL",
          "--binlog-row-metadata=FULL", "--innodb-buffer-pool-size=1G", "--innodb-flush-log-at-trx-commit=2",
          "--sync-binlog=0"]


def _source(home: Path, dump: Path):
    from tasks.runtime.mariadb import MariaDBServer, free_port

    root = home / f"source-{dump.stem}"
    shutil.rmtree(root, ignore_errors=True)
    server = MariaDBServer(root / "data", root / "run", free_port(), "default")
    server.initialize()
    server.start(extra_args=BINLOG)
    server.wait_ready()
    server.query("CREATE DATABASE shop", f"CREATE USER reader@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'",
         "GRANT SELECT, RELOAD, LOCK TABLES, SHOW VIEW, TRIGGER, EVENT, REPLICATION SLAVE, BINLOG MONITOR "
         "ON *.* TO reader@'127.0.0.1'")
    t0 = time.monotonic()
    with subprocess.Popen(["zstd", "-dc", str(dump)], stdout=subprocess.PIPE) as unzip:
        subprocess.run(["mariadb", *server.admin().client_args(), "shop"], stdin=unzip.stdout, check=True)
    print(f"  source loaded in {time.monotonic() - t0:.1f} s (not part of any cycle)")
    return server


def _rules_without_scrub(home: Path) -> Path:
    """The shop rules with support_tickets truncated: with its free-text scrub, each changed
    name or e-mail changes the scrub's dictionary and the cycle runs in full (README)."""
    import yaml

    from phoenix.config import get_settings

    rules = yaml.safe_load(get_settings().rules_path.read_text())
    rules["tables"]["support_tickets"] = {"truncate": True}
    path = home / "shop-no-tickets.yaml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    return path


def _cycle(url: str, mode: str) -> tuple[float, dict]:
    from flows.breed import breed

    t0 = time.monotonic()
    result = breed(source=url, mode=mode)
    return time.monotonic() - t0, result


@contextlib.contextmanager
def _apply_cpu(into: dict):
    """CPU between the Applier's start and end: this process, its finished children (the
    binlog reader) and the whole machine (the breeder's server is the rest)."""
    from anonymization.incremental import Applier

    def now() -> tuple[float, ...]:
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        with open("/proc/stat") as f:
            busy = sum(int(x) for x in f.readline().split()[1:4]) / os.sysconf("SC_CLK_TCK")
        return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime, busy

    enter, exit_ = Applier.__enter__, Applier.__exit__

    def started(self):
        into["start"] = now()
        return enter(self)

    def ended(self, *exc):
        into["end"] = now()
        return exit_(self, *exc)

    Applier.__enter__, Applier.__exit__ = started, ended  # type: ignore[method-assign]
    try:
        yield
    finally:
        Applier.__enter__, Applier.__exit__ = enter, exit_  # type: ignore[method-assign]


def _cpu_per_row(cpu: dict, rows: int) -> str:
    me, reader, busy = (b - a for a, b in zip(cpu["start"], cpu["end"], strict=True))
    us = [1e6 * x / max(rows, 1) for x in (me, reader, busy - me - reader)]
    return f"CPU per row {sum(us):.0f} µs: the reader {us[1]:.0f} · this process {us[0]:.0f} · the rest (server) {us[2]:.0f}"


def _steps(result: dict) -> str:
    return " · ".join(f"{k} {v:.1f}" for k, v in result["steps"].items())


def run(home: Path, scales: list[int], backends: list[str], changes: int) -> None:
    from phoenix.config import get_settings
    from phoenix.db import connect
    from tasks.sources.churn import churn
    from tasks.sources.generate import generate

    os.environ["PHOENIX_SOURCE_PASSWORD"] = PASSWORD
    os.environ["PHOENIX_RULES"] = str(_rules_without_scrub(home))
    incremental: dict[tuple[str, int], float] = {}
    for scale in scales:
        dump = home / f"shop-{scale}.sql.zst"
        if not dump.exists():
            generate(dump, scale=scale)
        print(f"scale {scale}: {dump.stat().st_size / 1e6:,.0f} MB compressed")
        server = _source(home, dump)
        try:
            url = f"mysql://reader@127.0.0.1:{server.port}/shop"
            customers = server.query("SELECT COUNT(*) FROM shop.customers")[0][0]
            for backend in backends:
                os.environ["PHOENIX_STORAGE"] = backend
                get_settings.cache_clear()
                _cycle(url, "full")  # the golden the incremental cycle starts from
                conn = connect(server.admin(), "shop")
                try:
                    done = churn(conn, changes / customers, seed=scale)
                finally:
                    conn.close()
                cpu: dict = {}
                with _apply_cpu(cpu):
                    inc_s, inc = _cycle(url, "incremental")
                full_s, full = _cycle(url, "full")
                rows = sum(sum(k.values()) for k in inc["applied"].values())
                apply_s = inc["steps"].get("apply", 0.0)
                incremental[(backend, scale)] = inc_s
                differ = sorted(t for t in full["checksums"] if inc["checksums"].get(t) != full["checksums"][t])
                same = "yes" if not differ else "NO, in " + ", ".join(differ)
                print(f"  {backend}: {sum(done.counts.values()):,} changes ({changes:,} customers of {customers:,}) "
                      f"→ {rows:,} rows applied in {apply_s:.1f} s ({rows / max(apply_s, 1e-9):,.0f} rows/s); "
                      f"{_cpu_per_row(cpu, rows)}")
                print(f"  {backend}: incremental {inc_s:.1f} s vs full {full_s:.1f} s = {100 * inc_s / full_s:.1f} % "
                      f"(checksums equal: {same})")
                print(f"    incremental: {_steps(inc)}")
                print(f"    full:        {_steps(full)}")
        finally:
            server.stop()
            shutil.rmtree(home / f"source-{dump.stem}", ignore_errors=True)
    if len(scales) > 1:
        for backend in backends:
            a, b = incremental[(backend, scales[0])], incremental[(backend, scales[-1])]
            print(f"{backend}: incremental at scale {scales[-1]} / scale {scales[0]} = {b / a:.2f} "
                  f"({b:.1f} s / {a:.1f} s, same number of changed customers)")
