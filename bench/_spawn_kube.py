"""`bench/spawn.py --runtime kubernetes`: spawn → a real query on the local cluster's real
node (btrfs clones as `local` PVs, the MariaDB image built here, readiness by the kubelet),
p50/p95 over `spawns` environments, then `density` environments at once and what each
costs in memory: mariadbd and pause (the pod's cgroup) plus its containerd shim.

Goals (issue 15): p50 ≤ 5 s; 20 at once all Ready.
"""

from __future__ import annotations

import glob
import statistics
import time
from pathlib import Path

from _stack import percentile, rss_mb

from phoenix.config import Settings


def _rss_kb(pid: int) -> int:
    try:
        return int(rss_mb(pid) * 1024)
    except OSError:  # gone meanwhile
        return 0


def _pod_rss_kb(uid: str) -> int:
    """mariadbd and pause: every process in the pod's memory cgroup."""
    pids = set()
    for procs in glob.glob(f"/sys/fs/cgroup/memory/kubepods/**/pod{uid}/**/cgroup.procs", recursive=True):
        pids |= {int(p) for p in Path(procs).read_text().split()}
    return sum(_rss_kb(p) for p in pids)


def _shims_kb(sock: Path) -> tuple[int, int]:
    """(count, total RSS) of the containerd shims of this node's containerd."""
    n = total = 0
    for cmdline in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            args = Path(cmdline).read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"containerd-shim-runc-v2") and str(sock).encode() in args:
            n, total = n + 1, total + _rss_kb(int(cmdline.split("/")[2]))
    return n, total


def run(settings: Settings, gen: str, answer, spawns: int, density: int) -> list[str]:
    """The result lines; every environment is torn down again."""
    from kubernetes import client, config

    from infra.local import kube, kube_node
    from tasks import environments
    from tasks.runtime.kubernetes import KubernetesRuntime
    from tasks.runtime.kubernetes import manifests as m
    from tasks.storage import open_storage

    cluster = kube.up(settings)
    k = settings.kubernetes.model_copy(update={"kubeconfig": Path(cluster["kubeconfig"])})
    ks = settings.model_copy(update={"runtime": "kubernetes", "kubernetes": k})
    cfg = client.Configuration()
    config.load_kube_config(cluster["kubeconfig"], client_configuration=cfg)
    core = client.CoreV1Api(client.ApiClient(cfg))
    with open_storage(ks) as st, KubernetesRuntime(ks, st) as rt:
        times, downs = [], []
        for i in range(spawns):
            t0 = time.monotonic()
            info = environments.spawn(ks, st, rt, f"kbench-{i}", gen, "1h")
            answer((info, rt.credentials(info.id).password))
            times.append(time.monotonic() - t0)
        for i in range(spawns):
            t0 = time.monotonic()
            environments.teardown(ks, st, rt, f"kbench-{i}")
            downs.append(time.monotonic() - t0)
        print(f"kubernetes spawn → query p50 {statistics.median(times):.2f} s, p95 {percentile(times, 0.95):.2f} s; "
              f"teardown p50 {statistics.median(downs):.1f} s", flush=True)
        infos = [environments.spawn(ks, st, rt, f"kdense-{i}", gen, "1h") for i in range(density)]
        answering = 0
        for info in infos:
            try:
                answer((info, rt.credentials(info.id).password))
                answering += 1
            except Exception:  # noqa: BLE001 - counted, not raised: the bench reports how many answer
                pass
        pods = [core.list_namespaced_pod(m.namespace_for(ks, i.id)).items[0] for i in infos]
        ready = sum(any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or []) for p in pods)
        pod_kb = [_pod_rss_kb(p.metadata.uid) for p in pods]
        shims, shim_kb = _shims_kb(kube_node.sock(Path(cluster["log_dir"])))
        for info in infos:
            environments.teardown(ks, st, rt, info.name)
    per_env = (statistics.mean(pod_kb) + shim_kb / max(1, shims)) / 1024
    return [
        f"kubernetes (real node, local PVs on btrfs): spawn → query p50 {statistics.median(times):.2f} s, "
        f"p95 {percentile(times, 0.95):.2f} s over {spawns} (goal p50 ≤ 5 s); teardown p50 {statistics.median(downs):.1f} s",
        f"kubernetes density: {ready}/{density} pods Ready, {answering}/{density} answering at once; "
        f"RSS {per_env:.0f} MB each (mariadbd + pause {statistics.mean(pod_kb) / 1024:.0f} MB, "
        f"shim {shim_kb / max(1, shims) / 1024:.0f} MB; {shims} shims)",
    ]
