"""Reset an environment: its data back to the generation's state, same name and credentials."""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NONE

from flows._common import backends
from tasks import environments


@task(name="re-clone + restart with the same credentials", cache_policy=NONE)
def _reset(settings, storage, runtime, name, to_latest, allow_unverified):
    return environments.reset(settings, storage, runtime, name, to_latest, allow_unverified)


@flow(name="reset", description="Throw an environment's changes away.", persist_result=True)
def reset(name: str, to_latest: bool = False, allow_unverified: bool = False) -> dict:
    with backends() as (settings, storage, runtime):
        return _reset(settings, storage, runtime, name, to_latest, allow_unverified).as_dict()
