"""`phoenix ci spawn|teardown`: what a CI job runs, through the Prefect API."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from phoenix.commands.envs import UNVERIFIED_HELP
from phoenix.proc import write_private

ci_app = typer.Typer(help="Start Phoenix deployments through the Prefect API and wait for their final state.",
                     no_args_is_help=True)
_err = Console(stderr=True)


@ci_app.command("spawn")
def spawn(
    name: str = typer.Argument(..., help="Environment name, e.g. $CI_COMMIT_REF_SLUG."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Wait for the run's final state (default)."),
    dotenv: Path = typer.Option(None, "--dotenv", help="Write a GitLab dotenv report here."),
    generation: str = typer.Option("latest", "--generation"),
    ttl: str = typer.Option(None, "--ttl", help="Lifetime, e.g. 30m, 8h, 2d (default: the server's default_ttl)."),
    password_file: Path = typer.Option(None, "--password-file",
                                       help="Write the DB password here (mode 0600), when the runtime's store is reachable."),
    timeout: float = typer.Option(900, "--timeout", help="Seconds to wait for the run."),
    allow_unverified: bool = typer.Option(False, "--allow-unverified", help=UNVERIFIED_HELP),
) -> None:
    """Run the `spawn` deployment; exit ≠ 0 if the run does not complete."""
    from deployments.ci import run, write_dotenv
    from phoenix.config import get_settings

    params = {"name": name, "generation": generation, **({"ttl": ttl} if ttl else {})}
    if allow_unverified:  # only when asked: a deployment registered before the flag still accepts the run
        params["allow_unverified"] = True
    if not wait:
        from prefect.deployments import run_deployment

        fr = run_deployment(name="spawn/spawn", parameters=params, timeout=0)
        print(json.dumps({"flow_run_id": str(fr.id), "name": fr.name}))
        return
    outcome = run("spawn/spawn", params, timeout=timeout)
    info = outcome.result
    if dotenv:
        write_dotenv(dotenv, info, get_settings().kubernetes.base_domain)
    if password_file:
        _write_password(password_file, info["id"])
    _err.print(f"[green]{escape(outcome.name)}[/] completed: {info['id']} at {escape(str(info['host']))}:{info['port']}")
    print(json.dumps({"flow_run_id": outcome.flow_run_id, **info}))


@ci_app.command("teardown")
def teardown(name: str = typer.Argument(...), timeout: float = typer.Option(600, "--timeout")) -> None:
    """Run the `teardown` deployment; exit ≠ 0 if the run does not complete."""
    from deployments.ci import run

    outcome = run("teardown/teardown", {"name": name}, timeout=timeout)
    _err.print(Text(f"{outcome.name} completed: " + ("removed" if outcome.result.get("removed") else "was not there")))
    print(json.dumps({"flow_run_id": outcome.flow_run_id, **outcome.result}))


def _write_password(path: Path, eid: str) -> None:
    from phoenix.config import get_settings
    from tasks.runtime.factory import open_runtime
    from tasks.storage import open_storage

    settings = get_settings()
    with open_storage(settings) as storage, open_runtime(settings, storage) as runtime:
        creds = runtime.credentials(eid)
    if creds is None:
        _err.print(Text(f"no password for {eid} in this machine's runtime store (Kubernetes: Secret db in phoenix-{eid})"))
        return
    write_private(path, creds.password)


def register(app: typer.Typer) -> None:
    app.add_typer(ci_app, name="ci")
