"""Benchmark: what translating a MySQL 8 dump for the MariaDB breeder costs, against the
restore it is part of, on both restore paths.

    .venv/bin/python bench/mysql8.py --quick    # scale 20 (~45 MB of SQL)
    .venv/bin/python bench/mysql8.py            # scale 500 (~1 GB of SQL)

The shop dump `phoenix generate` writes is turned into MySQL 8's format (its header, the GTID
and SQL_LOG_BIN lines of `--set-gtid-purged`, `_0900_` collations). The translation's cost is
CPU time measured alone: reading the dump through it minus reading it without (the client
path: blocks; the statement path: statements). Then the converted dump is restored for real,
one job (the `mariadb` client) and two (statements), and the ratio printed. Goal (issue 13):
the translation ≤ 3 % of the restore. Own directory; only a throwaway MariaDB server.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

HOME = Path(os.environ.get("PHOENIX_BENCH_HOME", "/var/tmp/phoenix-bench-mysql8"))

from _stack import timed_restore  # noqa: E402

from tasks.runtime.mariadb import MariaDBServer, free_port  # noqa: E402
from tasks.sources._mysql8 import Translator  # noqa: E402
from tasks.sources._mysql8_blocks import BlockTranslator  # noqa: E402
from tasks.sources._mysql8_server import collations  # noqa: E402
from tasks.sources._parallel import statements  # noqa: E402
from tasks.sources.generate import generate  # noqa: E402
from tasks.sources.restore import dump_blocks  # noqa: E402

MYSQL8_HEAD = (b"-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n--\n-- Host: 10.0.3.7    Database: shop\n"
               b"-- ------------------------------------------------------\n-- Server version\t8.0.36\n\n"
               b"/*!50503 SET NAMES utf8mb4 */;\nSET @MYSQLDUMP_TEMP_LOG_BIN = @@SESSION.SQL_LOG_BIN;\n"
               b"SET @@SESSION.SQL_LOG_BIN= 0;\n\n--\n-- GTID state at the beginning of the backup \n--\n\n"
               b"SET @@GLOBAL.GTID_PURGED=/*!80000 '+'*/ '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5';\n")


def to_mysql8(src: Path, out: Path) -> None:
    """The generator's dump in MySQL 8's format (a bench conversion: DDL-only strings replaced)."""
    import zstandard

    with open(out, "wb") as raw, zstandard.ZstdCompressor(level=3).stream_writer(raw) as w:
        first = True
        for block in dump_blocks(src):
            if first:  # the generator's header line → MySQL 8's header and GTID lines
                block = MYSQL8_HEAD + block[block.index(b"\n") + 1 :]
                first = False
            w.write(block.replace(b"COLLATE=utf8mb4_unicode_ci", b"COLLATE=utf8mb4_0900_ai_ci"))


def _drain(it: Iterator) -> float:
    t0 = time.process_time()
    for _ in it:
        pass
    return time.process_time() - t0


def cpu_costs(dump: Path, known: set[str]) -> tuple[float, float, float, float]:
    """(read, client-path translation, split into statements, statement-path translation) CPU s."""
    def tr() -> Translator:
        return Translator(known, lambda _u, _h: None, str(dump))

    read = min(_drain(dump_blocks(dump)) for _ in range(2))
    client = min(_drain(BlockTranslator(tr()).blocks(dump_blocks(dump))) for _ in range(2)) - read
    split = min(_drain(statements(dump_blocks(dump))) for _ in range(2))
    stmts = min(_drain(tr().statements(statements(dump_blocks(dump)))) for _ in range(2)) - split
    return read, max(client, 0.0), split, max(stmts, 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--scale", type=int, default=0)
    args = ap.parse_args()
    scale = args.scale or (20 if args.quick else 500)
    HOME.mkdir(parents=True, exist_ok=True)
    shop = HOME / f"shop-{scale}.sql.zst"
    if not shop.exists():
        generate(shop, scale=scale)
    dump = HOME / f"shop-{scale}-mysql8.sql.zst"
    if not dump.exists():
        to_mysql8(shop, dump)
    import pymysql

    probe = MariaDBServer(HOME / "probe" / "data", HOME / "probe" / "run", free_port(), "restore")
    probe.initialize()
    probe.start()
    probe.wait_ready()
    try:
        conn = pymysql.connect(**probe.admin().pymysql_kwargs())
        known = collations(conn)
        conn.close()
    finally:
        probe.stop()
        shutil.rmtree(HOME / "probe", ignore_errors=True)
    size = sum(len(b) for b in dump_blocks(dump))
    read, client, split, stmts = cpu_costs(dump, known)
    r1 = timed_restore(HOME, dump, "restore", 1)
    r2 = timed_restore(HOME, dump, "restore", 2)
    print(f"MySQL 8 dump: scale {scale}, {size / 1e6:,.0f} MB of SQL ({dump.stat().st_size / 1e6:,.0f} MB .zst)")
    print(f"reading it (decompression): {read:.2f} s CPU; split into statements: {split:.2f} s CPU")
    for path, cost, secs in (("client path (1 job)", client, r1), ("statement path (2 jobs)", stmts, r2)):
        rate = f"{size / 1e6 / cost:,.0f} MB/s" if cost >= 0.01 else "below the timer's noise"
        print(f"{path}: translation {cost:.2f} s CPU ({rate}) vs restore {secs:.1f} s = {100 * cost / secs:.2f} % "
              "(goal ≤ 3 %)")


if __name__ == "__main__":
    main()
