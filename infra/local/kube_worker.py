"""Stack part (opt-in): the Prefect Kubernetes worker inside the local cluster, from the Phoenix
image — `infra/k8s/worker.yaml` and `rbac.yaml` as they ship, with what a node of this host
needs on top — and the `*-k8s` deployments of prefect.yaml, whose flow runs it starts as Jobs.

What differs from a production cluster, and why:
- Pods share the host's network: the Prefect server and the API server listen on 127.0.0.1
  here. In-cluster config is pointed at the API server's own address for the same reason.
- The flow-run Jobs run privileged with the state directory mounted at its own path: the
  clones are btrfs subvolumes of this host (`kubernetes.volumes = "local"`), and the PVs the
  runtime writes name host paths.
- The worker may read nodes (`phoenix-worker-local-node`): local volumes are bound to the
  node that runs on this host, which the runtime finds by its label.
- Images come from containerd's store (`imagePullPolicy: Never`): there is no registry.
"""

from __future__ import annotations

import copy
import json
import os
import time

import yaml

from infra.local import images, kube, kube_host, kube_node
from infra.local import prefect as local_prefect
from infra.local.worker import REPO, prefect_cli
from phoenix.config import Settings
from phoenix.errors import StackError
from tasks.runtime.kubernetes.api import Api

POOL = "phoenix-k8s"  # prefect.yaml's k8s_pool
NAMESPACE = "phoenix"
DEPLOYMENTS = ("spawn-k8s", "teardown-k8s", "reset-k8s")
_NODE_READER = "phoenix-worker-local-node"
_LABELS = {"app.kubernetes.io/name": "phoenix-worker", "app.kubernetes.io/part-of": "phoenix"}


def _docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((REPO / "infra" / "k8s" / name).read_text()) if d]


def api_env(settings: Settings) -> list[dict]:
    # The API server binds 127.0.0.1 (and its certificate names it); the `kubernetes` Service's
    # ClusterIP would be DNATed to that loopback address, which is not routed for a pod.
    return [{"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
            {"name": "KUBERNETES_SERVICE_PORT", "value": str(settings.kubernetes.api_port)}]


def _flow_env(settings: Settings) -> dict[str, str]:
    """What a flow run needs, as the process worker's runs get it from the stack's environment."""
    env = {k: v for k, v in os.environ.items() if k.startswith("PHOENIX_") and k != "PHOENIX_KUBERNETES__KUBECONFIG"}
    env |= local_prefect.client_env(settings)
    env |= {"PHOENIX_HOME": str(settings.home_dir), "PHOENIX_STORAGE": "local", "PHOENIX_RUNTIME": "kubernetes",
            "PHOENIX_KUBERNETES__VOLUMES": "local"}
    env |= {e["name"]: e["value"] for e in api_env(settings)}
    return env


def manifests(settings: Settings, ref: str) -> list[dict]:
    """worker.yaml and rbac.yaml for the node of this host."""
    docs = _docs("worker.yaml") + _docs("rbac.yaml")
    for doc in docs:
        if doc["kind"] == "Deployment":
            pod = doc["spec"]["template"]["spec"]
            pod |= {"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet", "volumes": []}
            (c,) = pod["containers"]
            c |= {"image": ref, "imagePullPolicy": "Never", "volumeMounts": []}  # no Ceph here
            c["env"] = [e for e in c["env"] if not e["name"].startswith(("PHOENIX_", "PREFECT_API_URL"))]
            c["env"] += [{"name": "PREFECT_API_URL", "value": settings.prefect_url},
                         {"name": "PREFECT_WORKER_QUERY_SECONDS", "value": "1"}, *api_env(settings)]
    return docs + [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": _NODE_READER, "labels": _LABELS},
         "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": _NODE_READER, "labels": _LABELS},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": _NODE_READER},
         "subjects": [{"kind": "ServiceAccount", "name": "phoenix-worker", "namespace": NAMESPACE}]},
    ]


def job_template(settings: Settings) -> dict:
    """prefect-kubernetes' base job template, its pod on the host's network, privileged, with
    the state directory (the btrfs pool, the locks, the results) at its own path. Only btrfs
    storage: rbd-fuse + loop would mount in the pod, which needs a shared "/" here."""
    from prefect_kubernetes.worker import KubernetesWorker

    template = copy.deepcopy(KubernetesWorker.get_default_base_job_template())
    pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    home = str(settings.home_dir)
    pod |= {"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet",
            "volumes": [{"name": "home", "hostPath": {"path": home, "type": "Directory"}}]}
    (c,) = pod["containers"]
    c |= {"securityContext": {"privileged": True},
          # No propagation: "/" may be a private mount (it is on this VM). The pool is mounted
          # before the pod starts and the bind is recursive; btrfs clones mount nothing new.
          "volumeMounts": [{"name": "home", "mountPath": home}]}
    return template


def _register(settings: Settings, ref: str) -> None:
    path = settings.home_dir / "prefect" / "k8s-job-template.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(job_template(settings)))
    prefect_cli(settings, "work-pool", "create", POOL, "--type", "kubernetes", "--base-job-template", str(path),
             "--overwrite")
    names = [arg for name in DEPLOYMENTS for arg in ("--name", name)]
    prefect_cli(settings, "--no-prompt", "deploy", *names, timeout=300)
    # prefect.yaml names a registry image and production's settings; `deploy` applies
    # --job-variable to one deployment only, so the local ones are set afterwards.
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import DeploymentUpdate
    from prefect.settings import PREFECT_API_URL, temporary_settings

    variables = {"image": ref, "image_pull_policy": "Never", "namespace": NAMESPACE,
                 "service_account_name": "phoenix-worker", "env": _flow_env(settings), "finished_job_ttl": 300}
    with temporary_settings({PREFECT_API_URL: settings.prefect_url}), get_client(sync_client=True) as client:
        for name in DEPLOYMENTS:
            dep = client.read_deployment_by_name(f"{name.removesuffix('-k8s')}/{name}")
            client.update_deployment(dep.id, DeploymentUpdate(job_variables=variables))


def _ready(settings: Settings, timeout: float) -> dict:
    """The worker's pod Ready and the worker heard by the Prefect server."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    deadline = time.monotonic() + timeout
    with Api(settings) as api, temporary_settings({PREFECT_API_URL: settings.prefect_url}), \
            get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            pods = api.list("v1", "Pod", NAMESPACE, labels={"app.kubernetes.io/name": "phoenix-worker"})
            ready = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                            for c in (p.get("status") or {}).get("conditions") or [])]
            workers = client.read_workers_for_work_pool(POOL)
            if ready and any(w.status == "ONLINE" for w in workers):
                return {"pod": ready[0]["metadata"]["name"], "pool": POOL, "workers": len(workers)}
            time.sleep(1)
    raise StackError(f"the Kubernetes worker was not online within {timeout:.0f} s: see "
                     f"`kubectl -n {NAMESPACE} logs deploy/phoenix-worker`")


def up(settings: Settings, timeout: float = 240) -> dict:
    """The worker running in the cluster and the deployments registered; idempotent."""
    refs = images.ensure(kube.binaries(lambda m: None), app=True)
    kube_node.import_images(settings.home_dir / "kube", refs)
    ref = images.app_ref(refs)
    with Api(settings) as api:
        for doc in manifests(settings, ref):
            api.apply(doc)
    _register(settings, ref)
    return _ready(settings, timeout)


def status(settings: Settings) -> dict | None:
    """The worker's Deployment in the cluster, if the cluster runs and it is there."""
    if kube.status(settings) is None:
        return None
    path = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/phoenix-worker"
    dep = kube_host.api(settings.home_dir / "kube", kube.server_url(settings), "GET", path)
    if dep is None:
        return None
    return {"pool": POOL, "namespace": NAMESPACE, "image": dep["spec"]["template"]["spec"]["containers"][0]["image"],
            "ready": (dep.get("status") or {}).get("readyReplicas", 0)}


def down(settings: Settings) -> None:
    """The worker and its objects gone (the environments it made stay: `teardown` removes them)."""
    if status(settings) is None:
        return
    with Api(settings) as api:
        for job in api.list("batch/v1", "Job", NAMESPACE):  # flow runs it started (finished ones expire anyway)
            api.delete("batch/v1", "Job", job["metadata"]["name"], NAMESPACE)
        for doc in reversed(manifests(settings, "unused")):
            if doc["kind"] == "Namespace":  # a next `up` uses it again; deleting it takes the longest
                continue
            meta = doc["metadata"]
            api.delete(doc["apiVersion"], doc["kind"], meta["name"], meta.get("namespace"))
