"""Benchmark: what knowing the database's own originals inside free text costs (freetext.py).

    .venv/bin/python bench/freetext.py --scale 20     # the shop, about 40 MB

On one throwaway MariaDB server, the shop dump is restored with inline anonymization
twice, alternately: once as the cycle does (each ruled INSERT followed by the capture of
the text dictionary's original columns) and once with the capture switched off; then the
engine's run on the captured one (dictionary build, scrub through the rewrite), and the
SQL gate with and without the search for sampled full names/e-mails/phones inside text.
Before that run, the dictionary is built both ways, alternately: its pseudonyms computed
from the captured originals, and read from the rows joined on the key (_dictionary.py);
the two must be equal (checked, never printed: they hold originals).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pymysql

from anonymization import anonymize, load_rules, run_gate, take_baseline
from anonymization._dictionary import Stored, build
from anonymization.engine import Engine
from anonymization.freetext import Phrases
from anonymization.inline import Inline, originals
from anonymization.rules import ColumnRule
from tasks.runtime.mariadb import MariaDBServer, free_port
from tasks.sources.generate import generate
from tasks.sources.restore import restore

RULES = Path(__file__).resolve().parents[1] / "anonymization" / "rules" / "shop.yaml"
KEY = b"bench-key-0123456789abcdef-0123456789"


def _restore(server: MariaDBServer, dump: Path, db: str, capture: bool) -> tuple[float, Inline]:
    conn = pymysql.connect(**server.admin().pymysql_kwargs(), autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        cur.execute(f"CREATE DATABASE `{db}`")
    conn.close()
    il = Inline(server.admin(), db, load_rules(RULES), KEY)
    if not capture:
        il.capture = {}
    t0 = time.monotonic()
    restore(str(dump), server.admin(), db, jobs=2, inline=il)
    return time.monotonic() - t0, il


def _dictionaries(server: MariaDBServer, il: Inline, rounds: int, workers: int = 2) -> None:
    conns = [pymysql.connect(**server.admin().pymysql_kwargs(), database="b", autocommit=True) for _ in range(workers)]
    try:
        eng = Engine(conns, load_rules(RULES), KEY, inlined=il.done)
        eng.prepare()
        stored = Stored(il.done.text_keys, il.done.keys)
        times: dict[bool, list[float]] = {False: [], True: []}
        found = {}
        for r in range(rounds):
            for joined in (True, False) if r % 2 else (False, True):
                t0 = time.monotonic()
                found[joined] = build(conns, eng.rules, eng.schema, lambda s, v: eng._expr(ColumnRule(s), v),
                                      il.done.texts, il.done.tables, stored=stored if joined else None)
                times[joined].append(time.monotonic() - t0)
        assert found[False] == found[True], "the dictionaries differ"
        for joined, ts in times.items():
            how = "read from the rows" if joined else "computed          "
            print(f"dictionary of {len(found[joined]):,} originals {how}: median {statistics.median(ts):.2f} s "
                  f"({', '.join(f'{t:.2f}' for t in ts)}), {workers} sessions")
    finally:
        for c in conns:
            c.close()


def _gate(server: MariaDBServer, rules, baseline) -> None:
    phrases = baseline.phrases
    for label in ("with", "without"):
        t0 = time.monotonic()
        passed = run_gate(server.admin(), "b", rules, KEY, baseline).passed
        print(f"SQL gate {label} the {len(phrases):,} sampled phrases: {time.monotonic() - t0:.2f} s, passed={passed}")
        baseline.phrases = Phrases()
    baseline.phrases = phrases


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="scale 2, one round (what `make bench` runs)")
    args = ap.parse_args()
    if args.quick:
        args.scale, args.rounds = 2, 1
    with tempfile.TemporaryDirectory(prefix="phx-bench-") as tmp:
        dump = Path(tmp) / "shop.sql.zst"
        generate(dump, scale=args.scale)
        print(f"dump: {dump.stat().st_size / 1e6:.1f} MB compressed, scale {args.scale}")
        server = MariaDBServer(Path(tmp) / "data", Path(tmp) / "run", free_port(), "restore")
        server.initialize()
        server.start()
        server.wait_ready()
        try:
            times: dict[bool, list[float]] = {True: [], False: []}
            for r in range(args.rounds):
                for capture in ((False, True) if r % 2 else (True, False)):
                    seconds, il = _restore(server, dump, "b", capture)
                    times[capture].append(seconds)
            if not il.capture:  # what follows needs the database as the cycle leaves it: captured
                _, il = _restore(server, dump, "b", True)
            for capture, ts in times.items():
                print(f"restore inline, capture {'on ' if capture else 'off'}: median {statistics.median(ts):.2f} s "
                      f"({', '.join(f'{t:.2f}' for t in ts)})")
            _dictionaries(server, il, args.rounds)
            rules = load_rules(RULES)
            baseline = take_baseline(server.admin(), "b", rules, KEY, originals(il.samples))
            il.drop_samples()
            t0 = time.monotonic()
            report = anonymize(server.admin(), "b", rules, KEY, workers=2, inlined=il.done)
            print(f"anonymize after the inline restore: {time.monotonic() - t0:.2f} s; support_tickets "
                  f"{report.seconds.get('support_tickets', 0):.2f} s ({report.rows.get('support_tickets', 0):,} rows), "
                  f"{len(report.written):,} distinct pseudonyms written into texts; dictionary of {report.known:,} "
                  f"originals built in {report.known_seconds:.2f} s")
            baseline.exclude(report.written)
            _gate(server, rules, baseline)
        finally:
            server.stop()


if __name__ == "__main__":
    main()
