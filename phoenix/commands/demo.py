"""`phoenix demo`: the main job on the embedded default (local btrfs + local MariaDB).

Stack up → generate a production-like dump → breed a golden → spawn two environments →
show they are isolated → print how to connect. Leaves the environments running.
"""

from __future__ import annotations

import os
import secrets
import time

import pymysql
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from phoenix.proc import write_private

_out = Console()


def _key(home) -> None:
    """The demo's anonymization key: from the environment, else generated once and kept."""
    if os.environ.get("PHOENIX_ANON_KEY"):
        return
    path = home / "demo-anon.key"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        write_private(path, secrets.token_hex(32))
    os.environ["PHOENIX_ANON_KEY"] = path.read_text().strip()


def _query(info: dict, password: str, sql: str):
    conn = pymysql.connect(host=info["host"], port=info["port"], user=info["user"], password=password,
                           database=info["database"], autocommit=True)
    with conn.cursor() as cur:
        cur.execute(sql)
        rows = cur.fetchall()
    conn.close()
    return rows


def _run(deployment: str, parameters: dict, timeout: float = 1800.0) -> dict:
    """A run of the stack's deployment, as the Prefect UI or CI starts one: the deployment
    pages list the demo's runs, and the worker, not this process, runs them."""
    from deployments.ci import run

    return run(deployment, parameters, timeout=timeout).result


def _isolation(envs: dict, pw: dict, golden: str) -> tuple[str, str, str]:
    """A write in one environment is seen neither in the other nor in the golden."""
    from phoenix.commands.envs import password_of

    alice, bob = envs["demo-alice"], envs["demo-bob"]
    _query(alice, pw["demo-alice"], "UPDATE customers SET first_name = 'Written-by-Alice' WHERE id = 1")
    seen_alice = _query(alice, pw["demo-alice"], "SELECT first_name FROM customers WHERE id = 1")[0][0]
    seen_bob = _query(bob, pw["demo-bob"], "SELECT first_name FROM customers WHERE id = 1")[0][0]
    check = _run("spawn/spawn", {"name": "demo-golden-check", "generation": golden, "ttl": "10m", "recreate": True})
    seen_golden = _query(check, password_of(check["id"]), "SELECT first_name FROM customers WHERE id = 1")[0][0]
    _run("teardown/teardown", {"name": "demo-golden-check"})
    return seen_alice, seen_bob, seen_golden


def _show(settings, golden: str, envs: dict, pw: dict, seen: tuple[str, str, str], timings: dict) -> bool:
    seen_alice, seen_bob, seen_golden = seen
    isolated = seen_alice == "Written-by-Alice" and seen_bob != seen_alice and seen_golden != seen_alice
    emails = _query(envs["demo-bob"], pw["demo-bob"], "SELECT email FROM customers ORDER BY id LIMIT 3")
    _out.rule("Phoenix demo")
    _out.print(f"golden [bold]{escape(golden)}[/] — anonymized: e.g. {escape(', '.join(e[0] for e in emails))}")
    _out.print(escape(f"isolation: alice sees {seen_alice!r}, bob sees {seen_bob!r}, the golden has {seen_golden!r} → ")
               + ("[green]isolated[/]" if isolated else "[red]NOT isolated[/]"))
    table = Table("environment", "connect with")
    for name, info in envs.items():
        table.add_row(Text(name), Text(f"mariadb -h {info['host']} -P {info['port']} -u {info['user']} -p'{pw[name]}' {info['database']}"))
    _out.print(table)
    tt = Table("step", "seconds")
    for k, v in timings.items():
        tt.add_row(k, f"{v:.1f}")
    _out.print(tt)
    ui = settings.prefect_url.removesuffix("/api")
    _out.print(f"Prefect UI: {ui} (the runs are under Deployments → breed / spawn)  ·  `phoenix ls` lists everything  ·  "
               "`phoenix teardown demo-alice` / `phoenix stack down` clean up")
    return isolated


def demo(scale: int = typer.Option(20, "--scale", help="Size of the generated production dump (20 ≈ 45 MB SQL).")) -> None:
    """Generate, breed, spawn two environments, prove isolation, print how to connect."""
    from infra.local import prefect as local_prefect
    from infra.local import stack, worker
    from phoenix.commands.envs import password_of
    from phoenix.config import get_settings
    from tasks.sources.generate import generate

    timings: dict[str, float] = {}
    settings = get_settings()
    _key(settings.home_dir)
    get_settings.cache_clear()
    settings = get_settings()

    t = time.monotonic()
    worker.down(settings)  # it runs the flows: one started earlier may lack this key
    stack.up(settings, progress=lambda m: _out.print(f"[dim]stack[/] {escape(m)}"))
    for k, v in local_prefect.client_env(settings).items():
        os.environ[k] = v
    timings["stack up"] = time.monotonic() - t

    dump = settings.home_dir / f"demo-shop-{scale}.sql.zst"
    t = time.monotonic()
    if not dump.exists():
        rep = generate(dump, scale=scale)
        _out.print(f"generated {escape(str(dump))} ({rep.bytes_uncompressed / 1e6:,.0f} MB SQL, {sum(rep.rows.values()):,} rows)")
    timings["generate dump"] = time.monotonic() - t

    t = time.monotonic()
    golden = _run("breed/breed", {"source": str(dump)})["golden"]
    timings["breed golden"] = time.monotonic() - t
    envs = {}
    for name in ("demo-alice", "demo-bob"):
        t = time.monotonic()
        envs[name] = _run("spawn/spawn", {"name": name, "generation": "latest", "ttl": settings.default_ttl,
                                          "recreate": True})
        timings[f"spawn {name}"] = time.monotonic() - t
    pw = {n: password_of(e["id"]) for n, e in envs.items()}
    if not _show(settings, golden, envs, pw, _isolation(envs, pw, golden), timings):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
