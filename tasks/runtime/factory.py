"""Choose the runtime from the settings."""

from __future__ import annotations

from phoenix.config import Settings
from phoenix.errors import PhoenixError
from tasks.runtime.base import Runtime
from tasks.storage import Storage


def open_runtime(settings: Settings, storage: Storage) -> Runtime:
    if settings.runtime == "kubernetes":
        try:
            from tasks.runtime.kubernetes import KubernetesRuntime  # heavy client: import lazily
        except ModuleNotFoundError as exc:
            if exc.name != "tasks.runtime.kubernetes":
                raise
            raise PhoenixError("runtime 'kubernetes' is not part of this build yet: set runtime = \"local\"",
                               exit_code=2) from None
        return KubernetesRuntime(settings, storage)
    from tasks.runtime.local import LocalRuntime

    return LocalRuntime(settings, storage)
