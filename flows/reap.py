"""The reaper: expired environments, leftovers of failed runs, retired generations, drift,
and flow runs whose process is gone (marked Crashed)."""

from __future__ import annotations

from datetime import timedelta

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from flows._common import backends, publish_environments, tag_run
from tasks import environments, runs


@task(name="reap", cache_policy=NONE)
def _reap(settings, storage, runtime):
    return environments.reap(settings, storage, runtime)


@task(name="mark runs whose process is gone crashed", cache_policy=NONE)
def _crash_dead_runs(settings) -> list[str]:
    return runs.crash_dead_runs(timedelta(seconds=settings.prefect.abandoned_after))


@flow(name="reap", description="Tear down expired environments and remove leftovers.", persist_result=True)
def reap() -> dict:
    tag_run()
    with backends() as (settings, storage, runtime):
        report = _reap(settings, storage, runtime).as_dict()
        publish_environments(storage, runtime)
    report["crashed_runs"] = _crash_dead_runs(settings)
    lines = ["# Reap report", ""] + [f"- **{k}**: {', '.join(v) if v else '—'}" for k, v in report.items()]
    create_markdown_artifact(key="drift-report", markdown="\n".join(lines), description="reaper findings")
    return report
