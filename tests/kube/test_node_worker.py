"""The Prefect Kubernetes worker inside the local cluster, from the Phoenix image: `phoenix ci
spawn --deployment spawn-k8s` becomes a Job in namespace `phoenix` whose pod (service account
phoenix-worker, no kubeconfig) creates the environment on the node; `teardown-k8s` removes it.
And the worker's service account, from inside a pod, may do what the flows need and no more."""

from __future__ import annotations

import json
import time
import uuid

import pymysql
import pytest
from kubernetes import client

from infra.local import images, kube, kube_worker
from phoenix.names import env_id, image_name
from tasks.runtime.kubernetes import manifests as m
from tests.conftest import run_phoenix

pytestmark = pytest.mark.timeout(1500)


@pytest.fixture(scope="module")
def worker(settings, kube_cluster):
    """Started as a user does; afterwards only the worker goes (the session's cluster stays)."""
    res = run_phoenix("stack", "up", "--k8s-worker", timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    res = run_phoenix("stack", "status", "--json")
    info = json.loads(res.stdout)["kube-worker"]
    this_checkout = images.app_ref(images.ensure(kube.binaries(lambda m: None), app=True))
    assert info["pool"] == "phoenix-k8s" and info["ready"] == 1 and info["image"] == this_checkout
    yield info
    kube_worker.down(settings)
    assert kube_worker.status(settings) is None


@pytest.fixture(scope="module")
def batch(admin):
    return client.BatchV1Api(admin)


def _job_of(batch, core, flow_run_id: str) -> tuple[client.V1Job, client.V1Pod]:
    """The flow run's Job, once it has ended: the run reports its end to Prefect before its
    process exits, and the kubelet and the Job controller see the exit after that."""
    selector = f"prefect.io/flow-run-id={flow_run_id}"
    deadline = time.monotonic() + 120
    while True:
        (job,) = batch.list_namespaced_job(kube_worker.NAMESPACE, label_selector=selector).items
        if job.status.succeeded or job.status.failed or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    (pod,) = core.list_namespaced_pod(kube_worker.NAMESPACE, label_selector=f"job-name={job.metadata.name}").items
    return job, pod


def test_spawn_and_teardown_run_as_jobs_of_the_worker_in_the_cluster(
        core, batch, worker, node_settings, storage_local, published, unique, tmp_path):
    gen = published("local")
    name = f"{unique}-job"
    password = tmp_path / "password"
    try:
        res = run_phoenix("ci", "spawn", name, "--deployment", "spawn-k8s", "--password-file", str(password),
                          "--ttl", "30m", "--timeout", "300")
        assert res.returncode == 0, res.stderr[-3000:]
        info = json.loads(res.stdout.strip().splitlines()[-1])
        assert info["generation"] == gen and info["id"] == env_id(name)

        job, pod = _job_of(batch, core, info["flow_run_id"])
        assert job.status.succeeded == 1
        assert pod.spec.service_account_name == "phoenix-worker"  # the flow's rights were the worker's
        assert pod.spec.containers[0].image == worker["image"]

        ns = m.namespace_for(node_settings, info["id"])
        (db,) = core.list_namespaced_pod(ns).items
        assert any(c.type == "Ready" and c.status == "True" for c in db.status.conditions)
        with pymysql.connect(host=info["host"], port=info["port"], user=info["user"], password=password.read_text(),
                             database=info["database"], connect_timeout=10) as conn, conn.cursor() as cur:
            cur.execute("SELECT CURRENT_USER()")
            assert cur.fetchone()[0].startswith(info["user"] + "@")
            cur.execute("SELECT COUNT(*) FROM customers")
            assert cur.fetchone()[0] > 0

        res = run_phoenix("ci", "teardown", name, "--deployment", "teardown-k8s", "--timeout", "300")
        assert res.returncode == 0, res.stderr[-3000:]
        down = json.loads(res.stdout.strip().splitlines()[-1])
        assert down["removed"] is True
        job, _ = _job_of(batch, core, down["flow_run_id"])
        assert job.status.succeeded == 1
        assert ns not in {n.metadata.name for n in core.list_namespace().items
                          if n.status.phase != "Terminating"}
        assert ns not in {pv.metadata.name for pv in core.list_persistent_volume().items}
        assert not storage_local.exists(image_name(info["id"]))
    finally:
        run_phoenix("teardown", name, env={"PHOENIX_RUNTIME": "kubernetes"})


# What the flows do through the runtime (tasks/runtime/kubernetes), and what they must not.
_NEEDED = [("create", "namespaces", "", "", ""), ("delete", "namespaces", "", "", ""),
           ("create", "persistentvolumes", "", "", ""), ("delete", "persistentvolumes", "", "", ""),
           ("create", "secrets", "phoenix-x", "", ""), ("create", "services", "phoenix-x", "", ""),
           ("create", "persistentvolumeclaims", "phoenix-x", "", ""),
           ("create", "deployments", "phoenix-x", "apps", ""),
           ("create", "networkpolicies", "phoenix-x", "networking.k8s.io", ""),
           ("get", "pods", "phoenix-x", "", "log"), ("list", "nodes", "", "", ""),
           ("create", "jobs", "phoenix", "batch", "")]
_REFUSED = [("create", "clusterrolebindings", "", "rbac.authorization.k8s.io", ""),
            ("create", "rolebindings", "default", "rbac.authorization.k8s.io", ""),
            ("delete", "nodes", "", "", ""), ("patch", "nodes", "", "", ""),
            ("create", "pods", "default", "", "exec"), ("create", "pods", "default", "", ""),
            ("get", "configmaps", "kube-system", "", ""), ("update", "secrets", "kube-system", "", ""),
            ("create", "jobs", "default", "batch", "")]
# Not refused, and said in the README: RBAC cannot scope a rule to namespaces made later, so
# reading Secrets (an environment's credentials) is allowed in every namespace.
_REVIEW = """
import json, sys
from kubernetes import client, config
config.load_incluster_config()
api = client.AuthorizationV1Api()
out = []
for verb, resource, ns, group, sub in json.loads(sys.argv[1]):
    spec = client.V1SelfSubjectAccessReviewSpec(resource_attributes=client.V1ResourceAttributes(
        verb=verb, resource=resource, namespace=ns, group=group, subresource=sub))
    out.append(api.create_self_subject_access_review(client.V1SelfSubjectAccessReview(spec=spec)).status.allowed)
print(json.dumps(out))
"""


def test_the_workers_account_from_inside_a_pod_can_do_what_the_flows_need_and_no_more(core, worker, settings):
    pod_name = f"rbac-{uuid.uuid4().hex[:8]}"
    checks = _NEEDED + _REFUSED
    core.create_namespaced_pod(kube_worker.NAMESPACE, client.V1Pod(
        metadata=client.V1ObjectMeta(name=pod_name),
        spec=client.V1PodSpec(
            restart_policy="Never", service_account_name="phoenix-worker", host_network=True,
            containers=[client.V1Container(
                name="review", image=worker["image"], image_pull_policy="Never",
                command=["python3", "-c", _REVIEW, json.dumps(checks)],
                env=[client.V1EnvVar(**e) for e in kube_worker.api_env(settings)])])))
    try:
        deadline = time.monotonic() + 180
        while (phase := core.read_namespaced_pod(pod_name, kube_worker.NAMESPACE).status.phase) not in (
                "Succeeded", "Failed"):
            assert time.monotonic() < deadline, f"the review pod is still {phase}"
            time.sleep(0.5)
        log = core.read_namespaced_pod_log(pod_name, kube_worker.NAMESPACE)
        assert phase == "Succeeded", log[-2000:]
        allowed = dict(zip(map(tuple, checks), json.loads(log.strip().splitlines()[-1]), strict=True))
        assert [c for c in _NEEDED if not allowed[c]] == []
        assert [c for c in _REFUSED if allowed[c]] == []
    finally:
        core.delete_namespaced_pod(pod_name, kube_worker.NAMESPACE, grace_period_seconds=0)
