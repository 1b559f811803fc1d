"""Choose the runtime from the settings."""

from __future__ import annotations

from phoenix.config import Settings
from tasks.runtime.base import Runtime, Volumes


def open_runtime(settings: Settings, storage: Volumes) -> Runtime:
    if settings.runtime == "kubernetes":
        from tasks.runtime.kubernetes import KubernetesRuntime  # heavy client: import lazily

        return KubernetesRuntime(settings, storage)
    from tasks.runtime.local import LocalRuntime

    return LocalRuntime(settings, storage)
