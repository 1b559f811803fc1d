"""`phoenix spawn|teardown|reset|ls|reap`: environments on this machine (flows run in-process)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table
from rich.text import Text

_err = Console(stderr=True)
UNVERIFIED_HELP = ("Clone a generation that has not passed the forensic gate (published before it existed; "
                   "its redo logs may hold production data).")


def checked_ttl(value: str | None) -> str | None:
    """`--ttl` checked before any run starts, in Phoenix's words (the flow's parameter schema
    refuses it too, but in Prefect's, with a traceback from an in-process run)."""
    if value is not None:
        from phoenix.names import parse_ttl

        parse_ttl(value)
    return value


def password_of(eid: str) -> str:
    from phoenix.config import get_settings
    from tasks.runtime.factory import open_runtime
    from tasks.storage import open_storage

    settings = get_settings()
    with open_storage(settings) as storage, open_runtime(settings, storage) as runtime:
        creds = runtime.credentials(eid)
    return creds.password if creds else ""


def _connect_line(info: dict, password: str) -> str:
    return (f"mariadb -h {info['host']} -P {info['port']} -u {info['user']} -p'{password}' {info['database']}")


def spawn(
    name: str = typer.Argument(..., help="Environment name, e.g. the branch."),
    generation: str = typer.Option("latest", "--generation", help="Generation id, or latest."),
    ttl: str = typer.Option(None, "--ttl", help="Lifetime, e.g. 30m, 8h, 2d (default: config default_ttl).",
                            callback=checked_ttl),
    recreate: bool = typer.Option(False, "--recreate", help="Throw an existing environment away first."),
    as_json: bool = typer.Option(False, "--json", help="Print connection info as JSON (includes the password)."),
    allow_unverified: bool = typer.Option(False, "--allow-unverified", help=UNVERIFIED_HELP),
) -> None:
    """Clone the golden and start a server on it (idempotent per name)."""
    from flows._common import recorded_here
    from flows.spawn import spawn as spawn_flow
    from phoenix.config import get_settings

    with recorded_here():
        info = spawn_flow(name=name, generation=generation, ttl=ttl or get_settings().default_ttl,
                          recreate=recreate, allow_unverified=allow_unverified)
    password = password_of(info["id"])  # read here, on the user's terminal only; never a flow result
    if as_json:
        keys = ("name", "id", "generation", "host", "port", "user", "password", "database", "expires_at")
        out = {k: (password if k == "password" else info[k]) for k in keys}
        out["databases"] = list(info.get("databases") or [info["database"]])  # added: every database it holds
        print(json.dumps(out))
        return
    _err.print(f"[green]environment[/] {escape(info['name'])} ({info['id']}) from {escape(info['generation'])}, "
               f"expires {info['expires_at']}")
    print(_connect_line(info, password))


def teardown(name: str = typer.Argument(...)) -> None:
    """Stop the server and remove the clone (idempotent)."""
    from flows._common import recorded_here
    from flows.teardown import teardown as teardown_flow

    with recorded_here():
        result = teardown_flow(name=name)
    _err.print(Text(f"removed {name}" if result["removed"] else f"environment {name!r} was not there; nothing to do"))


def reset(name: str = typer.Argument(...),
          latest: bool = typer.Option(False, "--latest", help="Re-clone from the latest generation."),
          allow_unverified: bool = typer.Option(False, "--allow-unverified", help=UNVERIFIED_HELP)) -> None:
    """Discard the environment's changes: re-clone, same name and credentials."""
    from flows._common import recorded_here
    from flows.reset import reset as reset_flow

    with recorded_here():
        info = reset_flow(name=name, to_latest=latest, allow_unverified=allow_unverified)
    _err.print(Text(f"reset {info['name']} to {info['generation']}"))


def ls(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Generations and environments."""
    from phoenix.config import get_settings
    from tasks import catalog, environments
    from tasks.runtime.factory import open_runtime
    from tasks.storage import open_storage

    settings = get_settings()
    with open_storage(settings) as storage, open_runtime(settings, storage) as runtime:
        gens = [g.as_dict() for g in catalog.generations(storage)]
        envs = [{"name": e.name, "id": e.id, "generation": e.generation, "host": e.host, "port": e.port,
                 "state": e.state, "created": e.created, "expires_at": e.expires_at, "used_bytes": e.used_bytes}
                for e in environments.environments(storage, runtime)]
    if as_json:
        print(json.dumps({"generations": gens, "environments": envs}))
        return
    print_tables(*listing_tables(gens, envs))


def print_tables(*tables: Table, file=None) -> None:
    """To a terminal, as wide as it is (names fold, never cropped); to a pipe or a CI log,
    which have no width, as wide as the tables are, so every id stays whole on its line
    (Rich would otherwise assume 80 columns and crop `golden-2026…`)."""
    console = Console(file=file)
    if not console.is_terminal:
        wide = console.options.update_width(10_000)
        console = Console(file=file, width=max(80, *(console.measure(t, options=wide).maximum for t in tables)))
    console.print(*tables)


def _cells(*values: object) -> list[Text]:
    # Text, not a str: a name like `a[/]b` or `[bold red]x` is shown as typed, never parsed as markup
    return [Text(str(v)) for v in values]


def relative(iso: str, now: datetime | None = None) -> str:
    """`in 2h 59m` / `expired 5m ago`: what an operator asks of an expiry (the table also
    keeps the timestamp; `--json` only the timestamp)."""
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    secs = int((when - (now or datetime.now(UTC))).total_seconds())
    left = abs(secs)
    parts = [(left // 86400, "d"), (left % 86400 // 3600, "h"), (left % 3600 // 60, "m")]
    text = " ".join([f"{n}{u}" for n, u in parts if n][:2]) or f"{left}s"  # two units are enough
    return f"in {text}" if secs > 0 else f"expired {text} ago"


def listing_tables(gens: list[dict], envs: list[dict]) -> tuple[Table, Table]:
    """The two tables of `phoenix ls`; every value from the catalog is shown literally."""
    # "UNVERIFIED" is never cropped: it is the column an operator must not miss on a narrow terminal
    t = Table(Column("generation", overflow="fold"), "state", "latest", "created", "size", "clones",
              Column("forensic", no_wrap=True, min_width=10), title="generations")
    for g in gens:
        t.add_row(*_cells(g["id"], g["state"], "✓" if g["latest"] else "", g["created"],
                          f"{g['size_bytes'] / 1e6:,.1f} MB", g["clones"]),
                  "passed" if g["verified"] else "[bold red]UNVERIFIED[/]")
    e = Table(*(Column(c, overflow="fold") for c in ("environment", "id", "generation", "address")),
              "state", "expires", "used", title="environments")
    for x in envs:
        e.add_row(*_cells(x["name"], x["id"], x["generation"], f"{x['host']}:{x['port']}", x["state"],
                          f"{relative(x['expires_at'])} ({x['expires_at']})" if x["expires_at"] else "",
                          f"{(x['used_bytes'] or 0) / 1e6:,.1f} MB"))
    return t, e


def reap() -> None:
    """Tear down expired environments, remove leftovers, retire generations."""
    from flows._common import recorded_here
    from flows.reap import reap as reap_flow

    with recorded_here():
        report = reap_flow()
    for k, v in report.items():
        _err.print(Text(f"{k}: {', '.join(v) if v else '-'}"))


def register(app: typer.Typer) -> None:
    for fn in (spawn, teardown, reset, ls, reap):
        app.command(fn.__name__)(fn)
