"""Reset an environment: its data back to the generation's state, same name and credentials."""

from __future__ import annotations

from prefect import flow, task
from prefect.cache_policies import NONE

from flows._common import announce, backends, tag_run
from phoenix.names import env_id
from tasks import environments


@task(name="re-clone + restart with the same credentials", cache_policy=NONE)
def _reset(settings, storage, runtime, name, to_latest, allow_unverified):
    return environments.reset(settings, storage, runtime, name, to_latest, allow_unverified)


@flow(name="reset", description="Throw an environment's changes away.", flow_run_name="reset/{name}",
      persist_result=True)
def reset(name: str, to_latest: bool = False, allow_unverified: bool = False) -> dict:
    """Args:
        name: The environment's name, as it was spawned (e.g. the branch).
        to_latest: Re-clone from the newest published golden instead of the environment's own generation.
        allow_unverified: Re-clone from a golden that never passed the forensic gate (refused otherwise).
    """
    tag_run(f"env:{env_id(name)}")
    with backends() as (settings, storage, runtime):
        info = _reset(settings, storage, runtime, name, to_latest, allow_unverified)
        tag_run(f"generation:{info.generation}")
        announce(settings, info, "reset, ready")
        return info.as_dict()
