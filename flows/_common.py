"""What the on-demand flows share: opening the backends, the environments artifacts, and
what makes a run findable in the Prefect UI (its name from the parameters, its tags)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from phoenix.config import Settings, get_settings
from phoenix.errors import PhoenixError
from tasks import environments, runs
from tasks.runtime.base import Runtime
from tasks.runtime.factory import open_runtime
from tasks.storage import Storage, open_storage


class _Diagnosed(logging.Filter):
    """A PhoenixError is a diagnosis, not a crash: the engine's "Encountered exception" record
    keeps its one line and loses the traceback (on the console and in the run's logs in the
    UI). Any other exception keeps it: that is a bug to see."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, PhoenixError):
            record.exc_info, record.exc_text = None, None
        return True


for _name in ("prefect.flow_runs", "prefect.task_runs"):
    if not any(isinstance(f, _Diagnosed) for f in logging.getLogger(_name).filters):
        logging.getLogger(_name).addFilter(_Diagnosed())


@contextlib.contextmanager
def backends() -> Iterator[tuple[Settings, Storage, Runtime]]:
    settings = get_settings()
    with open_storage(settings) as storage, open_runtime(settings, storage) as runtime:
        yield settings, storage, runtime


def publish_environments(storage: Storage, runtime: Runtime) -> None:
    rows = [{"name": e.name, "host": e.host, "port": e.port, "database": e.database, "user": e.user,
             "generation": e.generation, "state": e.state, "created": e.created, "expires": e.expires_at,
             "used_bytes": e.used_bytes} for e in environments.environments(storage, runtime)]
    create_table_artifact(key="environments", table=rows, description="environments after this run")


def password_hint(settings: Settings, eid: str) -> str:
    """Where whoever may read it finds the password: never the password itself."""
    if settings.runtime == "kubernetes":
        ns = f"{settings.kubernetes.namespace_prefix}{eid}"
        return f"kubectl -n {ns} get secret phoenix-db -o jsonpath='{{.data.MARIADB_PASSWORD}}' | base64 -d"
    # Comments on their own lines: the UI does not wrap a code block (bench/ui.py).
    return (f"# on the host that runs the servers:\nphoenix spawn {eid} --json\n"
            f"# from a CI job, on any machine (sealed to the job's own key):\nphoenix ci spawn {eid} --password-file F")


def announce(settings: Settings, info: environments.EnvInfo, what: str) -> None:
    """The connect info a UI user needs: a log line and a markdown artifact per environment
    (keyed by it, so the artifacts page shows the latest of each). No password."""
    get_run_logger().info(f"{info.name} {what} at {info.host}:{info.port} "
                          f"(database {info.database}, user {info.user}; expires {info.expires_at})")
    md = "\n".join([
        f"# Environment `{info.name}`", "",
        "| | |", "|---|---|",
        f"| host | `{info.host}` |", f"| port | `{info.port}` |",
        f"| database | `{info.database}`" + "".join(f", `{d}`" for d in info.databases[1:]) + " |",
        f"| user | `{info.user}` |", f"| generation | `{info.generation}` |", f"| expires | {info.expires_at} |",
        "", "The password is not shown here. Whoever may read it gets it with:", "",
        f"```sh\n{password_hint(settings, info.id)}\n```",
        "", f"```sh\nmariadb -h {info.host} -P {info.port} -u {info.user} -p {info.database}\n```"])
    create_markdown_artifact(key=f"env-{info.id}"[:60].rstrip("-"), markdown=md,
                             description=f"how to connect to {info.name}")


def tag_run(*tags: str) -> None:
    """Add tags to the current flow run (the UI filters runs by them): env:<id>, generation:<id>;
    and the record of the process that runs it, by which the reaper knows when it is gone
    (tasks/runs.py). Every flow calls this first: a worker's runs are created without it."""
    from prefect.client.orchestration import get_client
    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    if not run_id:
        return
    wanted = {*tags, runs.Process.current().tag()}
    with contextlib.suppress(Exception), get_client(sync_client=True) as client:  # a tag is a convenience
        current = set(client.read_flow_run(run_id).tags or [])
        if not wanted <= current:
            client.update_flow_run(run_id, tags=sorted(current | wanted))


@contextlib.contextmanager
def recorded_here() -> Iterator[None]:
    """Flow runs created in this block (the CLI's, run in-process) carry the record of this
    process from their creation on: one killed before its first line is found dead too."""
    from prefect import tags

    with tags(runs.Process.current().tag()):
        yield
