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


def _listing(n: int):
    gens = [{"id": f"golden-2026120{i}T232859Z", "state": "published", "latest": i == 0, "created":
             "2026-12-06T23:28:59+00:00", "size_bytes": 261_800_000, "clones": 2, "verified": True} for i in range(n)]
    envs = [{"name": f"feature/a-rather-long-branch-name-{i}", "id": f"feature-a-rather-long-branch-name-{i}",
             "generation": gens[0]["id"], "host": "10.244.0.17", "port": 30306, "state": "running",
             "created": "", "expires_at": "2026-12-09T23:28:59+00:00", "used_bytes": 12_700_000} for i in range(n)]
    return gens, envs


def test_ls_to_a_pipe_or_ci_log_crops_no_name():
    """Not a terminal (a CI log, `| grep`): Rich assumed 80 columns and printed `golden-2…`."""
    import io

    from phoenix.commands.envs import listing_tables, print_tables

    gens, envs = _listing(2)
    out = io.StringIO()
    print_tables(*listing_tables(gens, envs), file=out)
    lines = out.getvalue().splitlines()
    for value in [g["id"] for g in gens] + [v for e in envs for v in (e["name"], e["id"])] + ["10.244.0.17:30306"]:
        assert any(value in line for line in lines), value  # whole, on one line: grep finds it
    assert "…" not in out.getvalue()


def test_ls_on_a_narrow_terminal_folds_names_instead_of_cropping_them():
    from rich.console import Console

    from phoenix.commands.envs import listing_tables

    gens, envs = _listing(1)
    console = Console(record=True, width=80, force_terminal=True)
    console.print(*listing_tables(gens, envs))
    text = console.export_text()
    # each id column, read down its cells, holds the whole value (folded over lines, not cropped)
    rows = [line.split("│")[1:-1] for line in text.splitlines() if line.startswith("│")]
    env_rows = rows[-4:] if len(rows) > 4 else rows
    for col, value in ((0, envs[0]["name"]), (1, envs[0]["id"]), (2, gens[0]["id"])):
        assert "".join(r[col].strip() for r in env_rows) == value, [r[col] for r in env_rows]
