"""`phoenix ci spawn|teardown`: what a CI job runs, through the Prefect API."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from phoenix.commands.envs import UNVERIFIED_HELP, checked_ttl
from phoenix.errors import MigrationFailed, RunFailed
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
    ttl: str = typer.Option(None, "--ttl", help="Lifetime, e.g. 30m, 8h, 2d (default: the server's default_ttl).",
                            callback=checked_ttl),
    password_file: Path = typer.Option(None, "--password-file",
                                       help="Write the DB password here (mode 0600); it travels sealed to this job's "
                                            "one-time key, so this works from any machine."),
    migrate: str = typer.Option(None, "--migrate", envvar="PHOENIX_MIGRATE",
                                help="A command run against the environment (DB_HOST, DB_PORT, DB_NAME, DB_USER, "
                                     "DB_PASSWORD in its environment); failing, it fails the job."),
    timeout: float = typer.Option(900, "--timeout", help="Seconds to wait for the run."),
    allow_unverified: bool = typer.Option(False, "--allow-unverified", help=UNVERIFIED_HELP),
    deployment: str = typer.Option("spawn", "--deployment", envvar="PHOENIX_SPAWN_DEPLOYMENT",
                                   help="The spawn flow's deployment: `spawn-k8s` runs it as a Kubernetes Job."),
) -> None:
    """Run the `spawn` deployment; exit ≠ 0 if the run does not complete."""
    from deployments.ci import run, write_dotenv
    from phoenix.config import get_settings
    from phoenix.sealed import KeyPair

    keys = KeyPair() if (password_file or migrate) else None
    params = {"name": name, "generation": generation, **({"ttl": ttl} if ttl else {}),
              **({"seal_to": keys.public} if keys else {})}
    if allow_unverified:  # only when asked: a deployment registered before the flag still accepts the run
        params["allow_unverified"] = True
    if not wait:
        from prefect.deployments import run_deployment

        from deployments.ci import api_url, reaching

        url = api_url()
        with reaching(url):
            fr = run_deployment(name=f"spawn/{deployment}", parameters=params, timeout=0)
        print(json.dumps({"flow_run_id": str(fr.id), "name": fr.name}))
        return
    outcome = run(f"spawn/{deployment}", params, timeout=timeout)
    info = dict(outcome.result)
    sealed = info.pop("sealed_password", None)
    password = keys.open(sealed) if keys and sealed else None
    if dotenv:
        write_dotenv(dotenv, info, get_settings().kubernetes.base_domain)
    if password_file:
        if password is None:
            raise RunFailed(f"the spawn run of {name!r} returned no sealed password: upgrade the Phoenix deployment "
                            "(its `spawn` flow needs the seal_to parameter)")
        write_private(password_file, password)
    _err.print(f"{outcome.name} completed: {info['id']} at {info['host']}:{info['port']}", markup=False)
    print(json.dumps({"flow_run_id": outcome.flow_run_id, **info}))
    if migrate:
        _migrate(migrate, info, password)


@ci_app.command("teardown")
def teardown(
    name: str = typer.Argument(...),
    timeout: float = typer.Option(600, "--timeout"),
    deployment: str = typer.Option("teardown", "--deployment", envvar="PHOENIX_TEARDOWN_DEPLOYMENT",
                                   help="The teardown flow's deployment: `teardown-k8s` runs it as a Kubernetes Job."),
) -> None:
    """Run the `teardown` deployment; exit ≠ 0 if the run does not complete."""
    from deployments.ci import run

    outcome = run(f"teardown/{deployment}", {"name": name}, timeout=timeout)
    _err.print(Text(f"{outcome.name} completed: " + ("removed" if outcome.result.get("removed") else "was not there")))
    print(json.dumps({"flow_run_id": outcome.flow_run_id, **outcome.result}))


def _migrate(command: str, info: dict, password: str | None) -> None:
    """The branch's migrations against its environment; their output is the job's. A failure
    fails the job (the environment stays, for inspection)."""
    import os
    import subprocess

    env = {**os.environ, "DB_HOST": info["host"], "DB_PORT": str(info["port"]), "DB_NAME": info["database"],
           "DB_USER": info["user"], "DB_PASSWORD": password or ""}
    rc = subprocess.run(command, shell=True, env=env).returncode
    if rc != 0:
        raise MigrationFailed(f"the migration command exited {rc} (its output is above); environment {info['id']} "
                              "stays for inspection — fix the migration and push again")


def register(app: typer.Typer) -> None:
    app.add_typer(ci_app, name="ci")
