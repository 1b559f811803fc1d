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


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
