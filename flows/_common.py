"""What the on-demand flows share: opening the backends, and the environments artifact."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prefect.artifacts import create_table_artifact

from phoenix.config import Settings, get_settings
from tasks import environments
from tasks.runtime.base import Runtime
from tasks.runtime.factory import open_runtime
from tasks.storage import Storage, open_storage


@contextlib.contextmanager
def backends() -> Iterator[tuple[Settings, Storage, Runtime]]:
    settings = get_settings()
    with open_storage(settings) as storage, open_runtime(settings, storage) as runtime:
        yield settings, storage, runtime


def publish_environments(storage: Storage, runtime: Runtime) -> None:
    rows = [{"name": e.name, "generation": e.generation, "state": e.state, "created": e.created,
             "expires": e.expires_at, "used_bytes": e.used_bytes} for e in environments.environments(storage, runtime)]
    create_table_artifact(key="environments", table=rows, description="environments after this run")
