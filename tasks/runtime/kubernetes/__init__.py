"""The `kubernetes` runtime (see `runtime.py`); `manifests.py` builds its objects,
`api.py` talks to the API server."""

from tasks.runtime.kubernetes.runtime import KubernetesRuntime

__all__ = ["KubernetesRuntime"]
