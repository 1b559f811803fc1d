"""`phoenix generate`: a production-like shop dump."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape


def generate(
    out: Path = typer.Option(..., "--out", help="Dump file: .sql, .sql.gz or .sql.zst."),
    scale: int = typer.Option(1, "--scale", help="Size: 1 ≈ 2 MB / 23k rows of SQL; 500 ≈ 1 GB."),
    seed: int = typer.Option(42, "--seed", help="Same seed, same data."),
) -> None:
    """Write a mysqldump-compatible dump of a realistic shop database (restores into any database)."""
    from tasks.sources.generate import generate as _generate

    err = Console(stderr=True)
    t0 = time.monotonic()
    report = _generate(out, scale=scale, seed=seed, progress=lambda t, n: err.print(f"[dim]generate[/] {escape(t)}: {n:,} rows"))
    secs = time.monotonic() - t0
    mb = report.bytes_uncompressed / 1e6
    err.print(f"wrote {escape(str(out))} — {sum(report.rows.values()):,} rows, {mb:,.1f} MB of SQL in {secs:.1f}s "
              f"({mb / secs:,.1f} MB/s)")


def churn(
    dsn: str = typer.Option(..., "--dsn", help="The running shop source: mysql://user:password@host:port/db "
                            "(or ?unix_socket=PATH)."),
    fraction: float = typer.Option(0.01, "--fraction", help="About this share of the customers is changed."),
    seed: int = typer.Option(1, "--seed", help="Same seed and source, same changes."),
    tickets: bool = typer.Option(False, "--tickets", help="Also open support tickets (free text)."),
    as_json: bool = typer.Option(False, "--json", help="Print what was changed as JSON."),
) -> None:
    """Apply production-like changes to a running shop source (for incremental cycles)."""
    import json

    from phoenix.commands.anonymize import parse_dsn
    from phoenix.db import connect, database_errors
    from phoenix.errors import InvalidInput
    from tasks.sources.churn import churn as _churn

    if not 0 < fraction <= 1:
        raise InvalidInput(f"--fraction {fraction}: expected a share above 0 and at most 1 (0.01 = 1 %)")
    admin, db = parse_dsn(dsn)
    with database_errors("churn"):
        conn = connect(admin, db)
        try:
            done = _churn(conn, fraction, seed, tickets)
        finally:
            conn.close()
    if as_json:
        print(json.dumps({"counts": done.counts, "erased": done.erased}))
    else:
        Console(stderr=True).print("changed: " + ", ".join(f"{k} {v:,}" for k, v in done.counts.items()))


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
    app.command("churn")(churn)
