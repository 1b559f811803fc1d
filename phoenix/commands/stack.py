"""`phoenix stack up|down|status`: the local stack."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from phoenix.config import get_settings

stack_app = typer.Typer(help="Start, stop and inspect the local stack (btrfs, Ceph, Prefect, Kubernetes).",
                        no_args_is_help=True)
_err = Console(stderr=True)


@stack_app.command("up")
def up(
    ceph: bool = typer.Option(False, "--ceph", help="Also start a single-node Ceph cluster (implied by storage=rbd)."),
    kubernetes: bool = typer.Option(False, "--kubernetes", help="Also start a local single-node Kubernetes cluster: control plane, node and images (builds them the first time)."),
    k8s_worker: bool = typer.Option(False, "--k8s-worker", help="Also run the Prefect Kubernetes worker in that cluster (the Phoenix image of this checkout) and register the *-k8s deployments: `phoenix ci spawn --deployment spawn-k8s`."),
) -> None:
    """Start every part that is not running yet (idempotent)."""
    from infra.local import stack

    stack.up(get_settings(), ceph=ceph, kubernetes=kubernetes, k8s_worker=k8s_worker, progress=lambda m: _err.print(f"[dim]stack[/] {escape(m)}"))
    _print_status(stack.status(get_settings()))


@stack_app.command("down")
def down() -> None:
    """Stop exactly what `up` started (by pid), unmount, detach loop devices."""
    from infra.local import stack

    stack.down(get_settings(), progress=lambda m: _err.print(f"[dim]stack[/] {escape(m)}"))


@stack_app.command("status")
def status(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Each part, its pid and address; null for a part not started."""
    from infra.local import stack

    st = stack.status(get_settings())
    if as_json:
        print(json.dumps(st, indent=2, default=str))
    else:
        _print_status(st)


def _print_status(st: dict) -> None:
    table = Table("part", "state", "details")
    for name, info in st.items():
        if info is None:
            table.add_row(name, "[dim]stopped[/]", "")
        else:
            details = ", ".join(f"{k}={v}" for k, v in info.items() if not isinstance(v, dict | list))
            table.add_row(name, "[green]running[/]", Text(details))  # paths, URLs: shown as they are
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(stack_app, name="stack")
