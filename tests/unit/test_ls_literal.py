"""`phoenix ls` shows names as typed, never as Rich markup (issue 17)."""

from __future__ import annotations


def test_ls_shows_names_literally_never_as_markup():
    from rich.console import Console

    from phoenix.commands.envs import listing_tables

    names = ["a[/]b", "[bold red]x"]
    envs = [{"name": n, "id": f"e{i}", "generation": "golden-[/]", "host": "127.0.0.1", "port": 3306,
             "state": "running", "created": "", "expires_at": "", "used_bytes": 0} for i, n in enumerate(names)]
    gens = [{"id": "golden-[/]", "state": "published", "latest": True, "created": "", "size_bytes": 0,
             "clones": 2, "verified": False}]
    console = Console(record=True, width=200)
    console.print(*listing_tables(gens, envs))  # a[/]b raised MarkupError: `phoenix ls` exited 1
    out = console.export_text()
    assert all(n in out for n in names) and "golden-[/]" in out and "UNVERIFIED" in out


def test_ls_shows_expiry_relative_to_now():
    from datetime import UTC, datetime

    from phoenix.commands.envs import relative

    now = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)
    assert relative("2026-12-02T14:59:30+00:00", now) == "in 2h 59m"
    assert relative("2026-12-05T13:00:00+00:00", now) == "in 3d 1h"
    assert relative("2026-12-02T11:55:00+00:00", now) == "expired 5m ago"
    assert relative("2026-12-02T12:00:20+00:00", now) == "in 20s"
    assert relative("not a time", now) == "not a time"
