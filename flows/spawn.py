"""Spawn (or find again) the environment of a name: clone → start → ready."""

from __future__ import annotations

from typing import Annotated

from prefect import flow, task
from prefect.cache_policies import NONE
from pydantic import Field

from flows._common import announce, backends, publish_environments, tag_run
from phoenix.names import TTL_PATTERN, env_id
from phoenix.sealed import seal
from tasks import environments


@task(name="clone golden + start server + wait ready", cache_policy=NONE)
def _spawn(settings, storage, runtime, name, generation, ttl, recreate, allow_unverified):
    return environments.spawn(settings, storage, runtime, name, generation, ttl, recreate, allow_unverified)


@flow(name="spawn", description="An environment for a branch: a clone of a golden with its own server.",
      flow_run_name="spawn/{name}", persist_result=True)
def spawn(name: str, generation: str = "latest",
          ttl: Annotated[str | None, Field(pattern=TTL_PATTERN)] = None, recreate: bool = False,
          allow_unverified: bool = False, seal_to: str | None = None) -> dict:
    """Returns the connection info without the password (that stays in the runtime's secret store).

    Args:
        name: The environment's name, e.g. the branch (`feature/login`); the same name gets the same environment back.
        generation: `latest` (the newest published golden) or a generation id such as `golden-20261124T050000Z`.
        ttl: Lifetime from now: a number and a unit (s, m, h, d, w), e.g. `30m`, `8h`, `3d`; empty: the
            configured default_ttl. A re-spawn restarts it.
        recreate: Throw an existing environment of this name away and clone it anew.
        allow_unverified: Clone a golden that never passed the forensic gate (refused otherwise).
        seal_to: A CI job's one-time public key (base64; `phoenix ci spawn` makes it): the result then
            carries the password sealed to it, which only that job can open.
    """
    tag_run(f"env:{env_id(name)}")
    with backends() as (settings, storage, runtime):
        info = _spawn(settings, storage, runtime, name, generation, ttl, recreate, allow_unverified)
        tag_run(f"generation:{info.generation}")
        announce(settings, info, "ready")
        publish_environments(storage, runtime)
        result = info.as_dict()
        if seal_to:
            creds = runtime.credentials(info.id)
            if creds is not None:
                result["sealed_password"] = seal(creds.password, seal_to)
    return result
