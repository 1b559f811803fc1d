"""Benchmark: Phoenix's set-based engine vs pynonymizer 2.5 on the same rows, side by side.

    .venv/bin/python bench/anonymize.py --quick     # 20,000 customers
    .venv/bin/python bench/anonymize.py             # 1,000,000 customers (pynonymizer needs ~6 min)

Both anonymize a `customers` table (first name, last name, unique e-mail, phone) in two
identical databases on one MariaDB server; pynonymizer with `--only-step ANONYMIZE_DB`.
Goal (issue 5): ≥ 30× pynonymizer's rows/s, while deterministic and consistent.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pymysql

from anonymization import anonymize, load_rules
from tasks.runtime.mariadb import MariaDBServer, free_port

RULES = """
locale: [en_US, de_DE]
tables:
  customers:
    columns: {first_name: first_name, last_name: last_name, email: email, phone: phone}
"""
STRATEGY = """
tables:
  customers:
    columns: {first_name: first_name, last_name: last_name, email: unique_email, phone: phone_number}
"""
FILL = """
INSERT INTO customers
SELECT seq, ELT(1 + seq MOD 7, 'Anna', 'Ben', 'Chloé', 'Dawid', 'Emma', 'Finn', 'Greta'),
       ELT(1 + seq MOD 5, 'Müller', 'Smith', 'Dubois', 'Kowalski', 'Rossi'),
       CONCAT('user', seq, '@mail.example'), CONCAT('+49 151 ', LPAD(seq, 8, '0'))
FROM seq_1_to_{n}
"""


def _prepare(server: MariaDBServer, db: str, n: int) -> None:
    conn = pymysql.connect(**server.admin().pymysql_kwargs(), autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {db}")
        cur.execute(f"CREATE DATABASE {db}")
        cur.execute(f"CREATE TABLE {db}.customers (id INT PRIMARY KEY, first_name VARCHAR(64), last_name VARCHAR(64), "
                    "email VARCHAR(191) NOT NULL UNIQUE, phone VARCHAR(32))")
        cur.execute(f"USE {db}")
        cur.execute(FILL.format(n=n))
    conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rows", type=int)
    args = ap.parse_args()
    n = args.rows or (20_000 if args.quick else 1_000_000)
    tmp = Path(tempfile.mkdtemp(dir="/var/tmp", prefix="phx-bench-anon-"))
    server = MariaDBServer(tmp / "data", tmp / "run", free_port(), "restore")
    server.initialize()
    server.start()
    server.wait_ready()
    try:
        conn = pymysql.connect(**server.admin().pymysql_kwargs(), autocommit=True)
        with conn.cursor() as cur:
            cur.execute("CREATE USER IF NOT EXISTS 'bench'@'%' IDENTIFIED BY 'bench'")
            cur.execute("GRANT ALL ON *.* TO 'bench'@'%'")
        conn.close()
        for db in ("bench_phx", "bench_pyn"):
            _prepare(server, db, n)
        (tmp / "rules.yaml").write_text(RULES)
        (tmp / "strategy.yml").write_text(STRATEGY)

        t0 = time.monotonic()
        anonymize(server.admin(), "bench_phx", load_rules(tmp / "rules.yaml"), b"bench-key-0123456789")
        phx = time.monotonic() - t0

        exe = shutil.which("pynonymizer", path=str(Path(__import__("sys").executable).parent))
        t0 = time.monotonic()
        res = subprocess.run([exe, "--db-type", "mysql", "--db-host", "127.0.0.1", "--db-port", str(server.port),
                              "--db-user", "bench", "--db-password", "bench", "--db-name", "bench_pyn",
                              "--strategy", str(tmp / "strategy.yml"), "--only-step", "ANONYMIZE_DB"],
                             capture_output=True, text=True)
        pyn = time.monotonic() - t0
        if res.returncode != 0:
            raise SystemExit(f"pynonymizer failed: {res.stderr[-1000:]}")
        conn = pymysql.connect(**server.admin().pymysql_kwargs(), autocommit=True)
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM bench_pyn.customers WHERE email LIKE 'user%@mail.example'")
            left = cur.fetchone()[0]
        conn.close()
        print(f"{n:,} customers × 4 columns (first/last name, unique e-mail, phone)")
        print(f"{'tool':<22} {'seconds':>9} {'rows/s':>12} {'vs pynonymizer':>15}")
        print(f"{'pynonymizer 2.5':<22} {pyn:>9.1f} {n / pyn:>12,.0f} {1.0:>14.1f}x")
        print(f"{'phoenix (set-based)':<22} {phx:>9.1f} {n / phx:>12,.0f} {pyn / phx:>14.1f}x")
        print(f"pynonymizer left {left} original e-mails; goal ≥ 30x: {'MET' if pyn / phx >= 30 else 'MISSED'}")
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
