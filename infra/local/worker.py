"""Stack part: the deployments of prefect.yaml registered with the local Prefect server,
and a process worker for the pool that picks runs up within half a second (polling every 0.5 s) and starts each as the engine alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from infra.local import prefect as local_prefect
from infra.local._proc import pid_alive, read_pid, spawn_daemon, stop_pid
from phoenix.config import Settings
from phoenix.errors import StackError

REPO = Path(__file__).resolve().parent.parent.parent


def _pid_file(settings: Settings) -> Path:
    return settings.home_dir / "prefect" / "worker.pid"


def _env(settings: Settings) -> dict[str, str]:
    return {**os.environ, **local_prefect.client_env(settings), "PHOENIX_REPO": str(REPO),
            "PHOENIX_HOME": str(settings.home_dir), "PREFECT_WORKER_QUERY_SECONDS": "0.5",
            "PREFECT_WORKER_PREFETCH_SECONDS": "1"}


def prefect_cli(settings: Settings, *args: str, timeout: float = 120) -> str:
    """Prefect's CLI against the stack's server, from the checkout (prefect.yaml is read there)."""
    exe = str(Path(sys.executable).with_name("prefect"))
    res = subprocess.run([exe, *args], capture_output=True, text=True, cwd=REPO, env=_env(settings), timeout=timeout)
    if res.returncode != 0:
        detail = (res.stderr or res.stdout).strip().splitlines()
        raise StackError(f"prefect {' '.join(args[:2])} failed: {detail[-1] if detail else res.returncode}")
    return res.stdout


def _job_template() -> dict:
    """The process pool's template with the engine as the command. Without one, Prefect 3.9's
    worker starts a workspace supervisor that imports Prefect and then execs the engine, which
    imports it again: 2–3 s of each flow run's start (bench/spawn.py --only ci). The pull
    step (set_working_directory) runs in the engine just the same."""
    from prefect.workers.process import ProcessWorker

    template = ProcessWorker.get_default_base_job_template()
    template["variables"]["properties"]["command"]["default"] = f"{sys.executable} -m prefect.engine"
    return template


def _local_deployments() -> list[str]:
    """The deployments of prefect.yaml on the process pool (not the Kubernetes variant)."""
    import yaml

    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    return [d["name"] for d in spec["deployments"] if d["work_pool"]["name"] == "phoenix"]


def configure_breed(settings: Settings) -> dict:
    """A schedule that cannot fail for want of configuration: the breed deployment takes
    `source` and `rules` from the config; with no source its schedules are registered
    paused and its description says what to set. Returns what was set (for stack status)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentUpdate
    from prefect.settings import PREFECT_API_URL, temporary_settings

    params = {k: v for k, v in (("source", settings.source),
                                ("rules", str(settings.rules) if settings.rules else None)) if v}
    with temporary_settings({PREFECT_API_URL: settings.prefect_url}), get_client(sync_client=True) as client:
        dep = client.read_deployment_by_name("breed/breed")
        described = (dep.description or "").split(" — PAUSED")[0]
        if params:
            client.update_deployment(dep.id, DeploymentUpdate(parameters={**(dep.parameters or {}), **params},
                                                              description=described))
        else:
            client.update_deployment(dep.id, DeploymentUpdate(description=described + " — PAUSED: no source is "
                                     "configured; set `source` in phoenix.toml (or PHOENIX_SOURCE) and run "
                                     "`phoenix stack up`, or start a run with the `source` parameter"))
        for sched in dep.schedules or []:
            # The server resets what the update leaves out: the schedule's own parameters go along.
            client.update_deployment_schedule(dep.id, sched.id, active=bool(params.get("source")),
                                              parameters=dict(sched.parameters or {}))
    return {"source": bool(params.get("source")), "schedule_active": bool(params.get("source"))}


def status(settings: Settings) -> dict | None:
    pid = read_pid(_pid_file(settings))
    if not pid_alive(pid):
        return None
    return {"pool": settings.prefect.work_pool, "pid": pid, "log": str(_pid_file(settings).with_suffix(".log"))}


def up(settings: Settings) -> dict:
    if local_prefect.status(settings) is None:
        raise StackError("the worker needs the Prefect server: start it first (`phoenix stack up`)")
    current = status(settings)
    if current:
        configure_breed(settings)  # the config may have changed since the deployments were registered
        return current
    pool = settings.prefect.work_pool
    template = settings.home_dir / "prefect" / "job-template.json"
    template.write_text(json.dumps(_job_template()))
    prefect_cli(settings, "work-pool", "create", pool, "--type", "process", "--base-job-template", str(template),
             "--overwrite")
    names = [arg for name in _local_deployments() for arg in ("--name", name)]
    prefect_cli(settings, "--no-prompt", "deploy", *names, timeout=300)
    configure_breed(settings)
    exe = str(Path(sys.executable).with_name("prefect"))
    spawn_daemon([exe, "worker", "start", "--pool", pool, "--type", "process", "--limit", "8"],
                 log=_pid_file(settings).with_suffix(".log"), pid_file=_pid_file(settings), env=_env(settings),
                 cwd=REPO)
    return status(settings) or {}


def down(settings: Settings) -> None:
    stop_pid(read_pid(_pid_file(settings)), timeout=15)
    _pid_file(settings).unlink(missing_ok=True)
