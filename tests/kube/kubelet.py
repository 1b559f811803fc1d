"""The kubelet's part, played by the tests: the runtime's pods here use images that
cannot run locally (no registry), so these tests let a fake node take them.

While it plays, the real node carries the NoSchedule taint TAINT (the real scheduler
must not send these pods to the real kubelet, which could not pull their image), and
its own node is unschedulable (the real scheduler must not bind them to it either:
`wait_ready` must see them unscheduled until `serve`).

For the namespaces it is told to serve, it binds new pods to a Node object, reports
them Running and Ready (as a kubelet would once the readiness probe passes), and
finishes the deletion of terminating pods (as a kubelet does after the container
stopped). Everything goes through the real API server.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime

from kubernetes import client
from kubernetes.client.exceptions import ApiException

NODE = "phoenix-test-node"
TAINT = client.V1Taint(key="phoenix.io/fake-kubelet", value="playing", effect="NoSchedule")


class FakeKubelet:
    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)
        self.namespaces: set[str] = set()
        self.ready = True  # False: bind pods but never report them Ready
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fake-kubelet", daemon=True)
        self.errors: list[str] = []

    def __enter__(self) -> FakeKubelet:
        try:
            self.core.create_node(client.V1Node(metadata=client.V1ObjectMeta(name=NODE),
                                                spec=client.V1NodeSpec(unschedulable=True)))
        except ApiException as exc:
            if exc.status != 409:
                raise
            self.core.patch_node(NODE, {"spec": {"unschedulable": True}})
        self._taint_real_nodes(add=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._taint_real_nodes(add=False)
        with contextlib.suppress(ApiException):
            self.core.delete_node(NODE)

    def _taint_real_nodes(self, *, add: bool) -> None:
        for node in self.core.list_node().items:
            if node.metadata.name == NODE:
                continue
            taints = [t for t in (node.spec.taints or []) if t.key != TAINT.key] + ([TAINT] if add else [])
            self.core.patch_node(node.metadata.name, {"spec": {"taints": [
                {"key": t.key, "value": t.value, "effect": t.effect} for t in taints]}})

    def serve(self, namespace: str) -> None:
        self.namespaces.add(namespace)

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self._tick()
            except Exception as exc:  # noqa: BLE001 - keep playing; the test sees the errors
                self.errors.append(repr(exc))

    def _tick(self) -> None:
        for pod in self.core.list_pod_for_all_namespaces().items:
            ns, name = pod.metadata.namespace, pod.metadata.name
            if ns not in self.namespaces:
                continue
            try:
                if pod.metadata.deletion_timestamp:
                    self.core.delete_namespaced_pod(name, ns, grace_period_seconds=0)
                elif not pod.spec.node_name:
                    self.core.create_namespaced_pod_binding(
                        name, ns, client.V1Binding(metadata=client.V1ObjectMeta(name=name),
                                                   target=client.V1ObjectReference(kind="Node", name=NODE)),
                        _preload_content=False)  # the client cannot parse this response (a Status)
                elif self.ready and not any(c.type == "Ready" and c.status == "True"
                                            for c in (pod.status.conditions or [])):
                    now = datetime.now(UTC).isoformat()
                    status = {"phase": "Running", "startTime": now, "conditions": [
                        {"type": t, "status": "True", "lastTransitionTime": now}
                        for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")],
                        "containerStatuses": [{"name": c.name, "image": c.image, "imageID": "", "ready": True,
                                               "restartCount": 0, "started": True,
                                               "state": {"running": {"startedAt": now}}}
                                              for c in pod.spec.containers]}
                    self.core.patch_namespaced_pod_status(name, ns, {"status": status})
            except ApiException as exc:
                if exc.status not in (404, 409):
                    raise
