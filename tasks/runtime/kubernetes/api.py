"""The Kubernetes API as the runtime needs it: a few verbs on plain manifests.

Create-or-patch (`apply`), `get`, `list` by labels, `delete` and `wait_gone`, over the
official client's dynamic client. Every failure becomes one clear PhoenixError: an
unreachable API server within `kubernetes.request_timeout`, a refusal naming the
object and the permission; never a response body (a Secret's would hold passwords).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError

from phoenix.config import Settings
from phoenix.errors import ConfigError, KubernetesError, KubernetesUnreachable

_STRATEGIC = "application/strategic-merge-patch+json"


def _load(settings: Settings) -> client.ApiClient:
    k = settings.kubernetes
    cfg = client.Configuration()
    path = k.kubeconfig.expanduser() if k.kubeconfig else None
    try:
        if path is not None:
            if not path.is_file():
                raise ConfigError(f"kubernetes.kubeconfig: no file {path}: point it at a kubeconfig")
            config.load_kube_config(str(path), context=k.context, client_configuration=cfg)
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config(client_configuration=cfg)
        else:
            local = settings.home_dir / "kube" / "kubeconfig"  # the local stack's control plane
            default = Path(os.environ.get("KUBECONFIG", "~/.kube/config")).expanduser()
            chosen = default if default.is_file() else local
            if not chosen.is_file():
                raise ConfigError(
                    "no kubeconfig: set kubernetes.kubeconfig, or start the local control "
                    "plane with `phoenix stack up --kubernetes`"
                )
            config.load_kube_config(str(chosen), context=k.context, client_configuration=cfg)
    except ConfigException as exc:
        raise ConfigError(f"kubernetes.kubeconfig/context: {str(exc).splitlines()[0]}") from None
    cfg.retries = 0  # fail fast and clearly; the flows decide about retrying
    api = client.ApiClient(cfg)
    # The client sets no socket timeouts: without these a black-holed API server hangs forever.
    api.rest_client.pool_manager.connection_pool_kw["timeout"] = urllib3.Timeout(
        connect=min(5.0, k.request_timeout), read=k.request_timeout
    )
    return api


class Api:
    """One connection to the API server; a context manager that closes it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._api = _load(settings)
        self.server = self._api.configuration.host
        with self.errors("discover the API"):
            self._dyn = DynamicClient(self._api)

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except ApiException as exc:
            hint = {
                401: "the credentials in the kubeconfig are not accepted",
                403: "forbidden: give the worker the role in infra/k8s/rbac.yaml",
                422: "the object is invalid",
                409: "conflict",
            }.get(exc.status, exc.reason or "")
            raise KubernetesError(f"Kubernetes refused to {what} (HTTP {exc.status}: {hint})") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = type(getattr(exc, "reason", None) or exc).__name__
            raise KubernetesUnreachable(
                f"Kubernetes API at {self.server} unreachable while trying to {what} ({reason}): start it "
                "(`phoenix stack up --kubernetes`) or fix kubernetes.kubeconfig"
            ) from None

    def _res(self, api_version: str, kind: str):  # noqa: ANN202 - the dynamic client's Resource
        try:
            return self._dyn.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            raise KubernetesError(
                f"the API server has no {kind} in {api_version}: Kubernetes 1.20 or newer is needed"
            ) from None

    # -- verbs -------------------------------------------------------------------------
    def apply(self, obj: dict) -> dict:
        """Create, or patch what is there (unchanged content changes nothing)."""
        meta = obj["metadata"]
        what = f"apply {obj['kind']} {meta.get('namespace', '') + '/' if meta.get('namespace') else ''}{meta['name']}"
        res = self._res(obj["apiVersion"], obj["kind"])
        with self.errors(what):
            try:
                return res.create(body=obj, namespace=meta.get("namespace")).to_dict()
            except ApiException as exc:
                if exc.status != 409:
                    raise
            return res.patch(
                body=obj, name=meta["name"], namespace=meta.get("namespace"), content_type=_STRATEGIC
            ).to_dict()

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None:
        res = self._res(api_version, kind)
        with self.errors(f"read {kind} {name}"):
            try:
                return res.get(name=name, namespace=namespace).to_dict()
            except NotFoundError:
                return None

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, labels: dict[str, str] | None = None
    ) -> list[dict]:
        res = self._res(api_version, kind)
        selector = ",".join(f"{k}={v}" for k, v in (labels or {}).items()) or None
        with self.errors(f"list {kind}"):
            return res.get(namespace=namespace, label_selector=selector).to_dict()["items"]

    def patch(self, api_version: str, kind: str, name: str, body: dict, namespace: str | None = None) -> dict:
        res = self._res(api_version, kind)
        with self.errors(f"patch {kind} {name}"):
            return res.patch(body=body, name=name, namespace=namespace, content_type=_STRATEGIC).to_dict()

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        """True if it was there. In the background: what Phoenix deletes (namespaces, PVs, PVCs)
        owns no objects, and a foreground deletion waits for the garbage collector (a PVC took
        40 s on the real node instead of under 1 s); the callers wait for the object itself."""
        res = self._res(api_version, kind)
        with self.errors(f"delete {kind} {name}"):
            try:
                res.delete(name=name, namespace=namespace, body={"propagationPolicy": "Background"})
                return True
            except NotFoundError:
                return False

    def log(self, pod: str, namespace: str, *, previous: bool = False, tail: int = 40) -> str:
        """The last lines a pod's container wrote (the previous container's after a restart)."""
        with self.errors(f"read the log of pod {namespace}/{pod}"):
            try:
                return client.CoreV1Api(self._api).read_namespaced_pod_log(
                    pod, namespace, previous=previous, tail_lines=tail
                )
            except ApiException as exc:
                if exc.status in (400, 404):  # not started yet, or no previous container
                    return ""
                raise

    def wait_gone(
        self, api_version: str, kind: str, name: str, namespace: str | None = None, timeout: float = 180.0
    ) -> None:
        deadline = time.monotonic() + timeout
        while self.get(api_version, kind, name, namespace) is not None:
            if time.monotonic() > deadline:
                raise KubernetesError(
                    f"{kind} {name} still exists after {timeout:.0f} s (finalizers?): "
                    f"see `kubectl get {kind.lower()} {name} -o yaml`"
                )
            time.sleep(0.5)
