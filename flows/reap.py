"""The reaper: expired environments, leftovers of failed runs, retired generations, drift."""

from __future__ import annotations

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE

from flows._common import backends, publish_environments
from tasks import environments


@task(name="reap", cache_policy=NONE)
def _reap(settings, storage, runtime):
    return environments.reap(settings, storage, runtime)


@flow(name="reap", description="Tear down expired environments and remove leftovers.", persist_result=True)
def reap() -> dict:
    with backends() as (settings, storage, runtime):
        report = _reap(settings, storage, runtime)
        publish_environments(storage, runtime)
    lines = ["# Reap report", ""] + [f"- **{k}**: {', '.join(v) if v else '—'}" for k, v in report.as_dict().items()]
    create_markdown_artifact(key="drift-report", markdown="\n".join(lines), description="reaper findings")
    return report.as_dict()
