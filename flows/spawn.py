"""Spawn (or find again) the environment of a name: clone → start → ready."""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NONE

from flows._common import backends, publish_environments
from tasks import environments


@task(name="clone golden + start server + wait ready", cache_policy=NONE)
def _spawn(settings, storage, runtime, name, generation, ttl, recreate, allow_unverified):
    return environments.spawn(settings, storage, runtime, name, generation, ttl, recreate, allow_unverified)


@flow(name="spawn", description="An environment for a branch: a clone of a golden with its own server.",
      persist_result=True)
def spawn(name: str, generation: str = "latest", ttl: str | None = None, recreate: bool = False,
          allow_unverified: bool = False) -> dict:
    """Returns the connection info without the password (that stays in the runtime's secret store).
    `allow_unverified` clones a golden that never passed the forensic gate (refused otherwise)."""
    with backends() as (settings, storage, runtime):
        info = _spawn(settings, storage, runtime, name, generation, ttl, recreate, allow_unverified)
        publish_environments(storage, runtime)
    return info.as_dict()
