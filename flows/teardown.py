"""Tear an environment down: server, then clone; finishes a retiring generation."""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NONE

from flows._common import backends, publish_environments, tag_run
from phoenix.names import env_id
from tasks import environments


@task(name="stop server + remove clone", cache_policy=NONE)
def _teardown(settings, storage, runtime, name):
    return environments.teardown(settings, storage, runtime, name)


@flow(name="teardown", description="Remove an environment (idempotent).", flow_run_name="teardown/{name}",
      persist_result=True)
def teardown(name: str) -> dict:
    """Args:
        name: The environment's name, as it was spawned (e.g. the branch).
    """
    tag_run(f"env:{env_id(name)}")
    with backends() as (settings, storage, runtime):
        existed = _teardown(settings, storage, runtime, name)
        publish_environments(storage, runtime)
    return {"name": name, "removed": existed}
