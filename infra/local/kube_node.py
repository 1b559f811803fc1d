"""The local cluster's node and scheduler: containerd + runc with a CNI bridge, the
kubelet, kube-scheduler and kube-proxy (iptables mode), for `infra/local/kube.py`.

These parts are host-wide (iptables chains, the `phx0` bridge, cgroups, sysctls, a few
hard-coded paths): one node per machine. `down` undoes all of it — see
`kube_host.py` and notes/kubelet.md "Teardown". State under `<home>/kube/`.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from infra.local import images, kube_host
from infra.local._proc import pid_alive, read_pid, spawn_daemon, stop_pid
from phoenix.errors import StackError
from tasks.runtime.kubernetes.node import ANN_DB_IMAGE, HOST_LABEL

NODE = "phoenix-local-node"
BRIDGE = "phx0"
POD_SUBNET = "10.244.0.0/24"
CLUSTER_CIDR = "10.244.0.0/16"
DAEMONS = ("containerd", "kubelet", "kube-scheduler", "kube-proxy")  # start order
_PORTS = {10250: "the kubelet", 10248: "the kubelet's healthz", 10256: "kube-proxy's healthz",
          10249: "kube-proxy's metrics"}
_NODE_READY_TIMEOUT = 180.0
_DAEMON_TIMEOUT = 60.0


def _pid_file(d: Path, daemon: str) -> Path:
    return d / f"{daemon}.pid"


def sock(d: Path) -> Path:
    return d / "containerd" / "containerd.sock"


# --- configuration files -----------------------------------------------------------------

def _containerd_toml(d: Path) -> str:
    c, cri = d / "containerd", 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{c / 'root'}"
state = "{c / 'state'}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "{sock(d)}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{c / 'opt'}"
[{cri}]
  sandbox_image = "{images.PAUSE_REF}"
  stream_server_address = "127.0.0.1"
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = true  # the VM lacks CAP_SYS_RESOURCE: sandboxes fail without it
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{d / 'cni' / 'net.d'}"
  [{cri}.registry]
    # No registry may be reached from here: every pull goes to a closed local port.
    config_path = "{c / 'certs.d'}"
"""


def _cni_conflist(d: Path) -> str:
    return json.dumps({"cniVersion": "0.4.0", "name": "phoenix", "plugins": [
        {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": True, "hairpinMode": True,
         "ipam": {"type": "host-local", "dataDir": str(d / "cni" / "ipam"),
                  "ranges": [[{"subnet": POD_SUBNET, "gateway": "10.244.0.1"}]],
                  "routes": [{"dst": "0.0.0.0/0"}]}},
        {"type": "portmap", "capabilities": {"portMappings": True}}]}, indent=1)


def _kubelet_yaml(d: Path, ip: str) -> str:
    pki = d / "pki"
    return f"""apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {ip}
healthzBindAddress: 127.0.0.1
cgroupDriver: cgroupfs
failSwapOn: false
readOnlyPort: 0
clusterDomain: cluster.local
volumePluginDir: {d / 'kubelet-plugins'}
authentication:
  anonymous: {{enabled: false}}
  webhook: {{enabled: true}}
  x509: {{clientCAFile: {pki / 'ca.crt'}}}
authorization: {{mode: Webhook}}
evictionHard: {{"nodefs.available": "2%", "imagefs.available": "2%", "memory.available": "100Mi"}}
# The local images cannot be pulled again: never collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
"""


def _proxy_yaml(d: Path, kubeconfig: Path) -> str:
    return f"""apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {{kubeconfig: {kubeconfig}}}
hostnameOverride: {NODE}
mode: iptables
clusterCIDR: {CLUSTER_CIDR}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# 0: leave the host's conntrack sysctls alone.
conntrack: {{maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}}
"""


def _kubelet_kubeconfig(d: Path, server: str) -> str:
    pki = d / "pki"
    return f"""apiVersion: v1
kind: Config
clusters:
- name: phoenix-local
  cluster: {{server: "{server}", certificate-authority: "{pki / 'ca.crt'}"}}
users:
- name: kubelet
  user: {{client-certificate: "{pki / 'kubelet-client.crt'}", client-key: "{pki / 'kubelet-client.key'}"}}
contexts:
- name: phoenix-local
  context: {{cluster: phoenix-local, user: kubelet}}
current-context: phoenix-local
"""


def _write_configs(d: Path, ip: str, server: str, admin_kubeconfig: Path) -> None:
    (d / "cni" / "net.d").mkdir(parents=True, exist_ok=True)
    (d / "cni" / "net.d" / "10-phoenix.conflist").write_text(_cni_conflist(d))
    (d / "containerd").mkdir(exist_ok=True)
    (d / "containerd.toml").write_text(_containerd_toml(d))
    for host in ("_default", "docker.io", "k8s.gcr.io", "registry.k8s.io", "quay.io", "ghcr.io"):
        (d / "containerd" / "certs.d" / host).mkdir(parents=True, exist_ok=True)
        (d / "containerd" / "certs.d" / host / "hosts.toml").write_text(
            'server = "http://127.0.0.1:1"\n[host."http://127.0.0.1:1"]\n  capabilities = ["pull", "resolve"]\n')
    (d / "kubelet-config.yaml").write_text(_kubelet_yaml(d, ip))
    (d / "kubelet.kubeconfig").write_text(_kubelet_kubeconfig(d, server))
    (d / "kube-proxy.yaml").write_text(_proxy_yaml(d, admin_kubeconfig))


def _args(d: Path, bin_dir: Path, ip: str, admin_kubeconfig: Path) -> dict[str, list[str]]:
    endpoint = f"unix://{sock(d)}"
    return {
        "containerd": ["containerd", "--config", str(d / "containerd.toml")],
        "kubelet": [str(bin_dir / "kubelet"), f"--config={d / 'kubelet-config.yaml'}",
                    f"--kubeconfig={d / 'kubelet.kubeconfig'}", f"--root-dir={d / 'kubelet'}",
                    f"--cert-dir={d / 'kubelet-pki'}",
                    f"--hostname-override={NODE}", f"--node-ip={ip}", "--container-runtime=remote",
                    f"--container-runtime-endpoint={endpoint}", f"--image-service-endpoint={endpoint}",
                    "--runtime-request-timeout=5m", f"--pod-infra-container-image={images.PAUSE_REF}",
                    "--logtostderr=true", "--v=0"],
        "kube-scheduler": [str(bin_dir / "kube-scheduler"), f"--kubeconfig={admin_kubeconfig}",
                           "--leader-elect=false", "--port=0", "--secure-port=0", "--logtostderr=true"],
        "kube-proxy": [str(bin_dir / "kube-proxy"), f"--config={d / 'kube-proxy.yaml'}", "--logtostderr=true"],
    }


# --- readiness ---------------------------------------------------------------------------

def node_ready(d: Path, server: str) -> bool:
    node = kube_host.api(d, server, "GET", f"/api/v1/nodes/{NODE}", timeout=3.0) or {}
    conds = node.get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def _containerd_ready(d: Path) -> bool:
    if not sock(d).exists():
        return False
    res = subprocess.run(["ctr", "-a", str(sock(d)), "version"], capture_output=True, timeout=10)
    return res.returncode == 0


def _proxy_ready() -> bool:
    try:
        with urllib.request.urlopen("http://127.0.0.1:10256/healthz", timeout=2) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _wait(d: Path, daemon: str, check, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if not pid_alive(read_pid(_pid_file(d, daemon))):
            raise StackError(f"{daemon} exited while starting: see {d / (daemon + '.log')}, "
                             "fix the cause and re-run `phoenix stack up --kubernetes`")
        time.sleep(0.5)
    raise StackError(f"{daemon} not ready after {timeout:.0f} s: see {d / (daemon + '.log')}, "
                     "then re-run `phoenix stack up --kubernetes`")


# --- up / status / down ------------------------------------------------------------------

def import_images(d: Path, refs: dict[str, Path]) -> None:
    ctr = ["ctr", "-a", str(sock(d)), "-n", "k8s.io", "images"]
    have = subprocess.run([*ctr, "ls", "-q"], capture_output=True, text=True, timeout=60).stdout.split()
    for ref, tar in refs.items():
        if ref not in have:
            res = subprocess.run([*ctr, "import", str(tar)], capture_output=True, text=True, timeout=600)
            if res.returncode != 0:
                raise StackError(f"importing {tar} into containerd failed ({res.stderr.strip()[-200:]}): "
                                 f"delete it and re-run `phoenix stack up --kubernetes`")


def _check_ports() -> None:
    for port, what in _PORTS.items():
        if kube_host.port_busy(port):
            raise StackError(f"port {port} ({what}) is taken by another process: only one local node "
                             "runs per machine — stop the other one (`phoenix stack down`) first")


def _announce(d: Path, server: str, refs: dict[str, Path]) -> None:
    """Tell the runtime this node runs on this host (its volumes may be local paths) and
    which MariaDB image it has (`kubernetes.db_image = ""`)."""
    patch = {"metadata": {"labels": {HOST_LABEL: "true"}, "annotations": {ANN_DB_IMAGE: images.mariadb_ref(refs)}}}
    if kube_host.api(d, server, "PATCH", f"/api/v1/nodes/{NODE}", patch=patch) is None:
        raise StackError(f"could not label the node {NODE}: see {d / 'kube-apiserver.log'}, "
                         "then re-run `phoenix stack up --kubernetes`")


def up(d: Path, bin_dir: Path, server: str, admin_kubeconfig: Path, ip: str) -> None:
    """Start what is not running, in order; each waits for a real readiness check."""
    if all(pid_alive(read_pid(_pid_file(d, n))) for n in DAEMONS) and node_ready(d, server):
        _announce(d, server, images.ensure(bin_dir, lambda m: None))
        return
    down(d, server)  # half-running: start over cleanly
    _check_ports()
    refs = images.ensure(bin_dir)
    kube_host.record_sysctls(d)
    (d / "bin-dir").write_text(str(bin_dir))  # for `down`'s kube-proxy --cleanup
    _write_configs(d, ip, server, admin_kubeconfig)
    args = _args(d, bin_dir, ip, admin_kubeconfig)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBECONFIG", "CONTAINERD"))}
    # The kubelet's in-tree ECR credential provider would ask the EC2 metadata address.
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    checks = {"containerd": (lambda: _containerd_ready(d), _DAEMON_TIMEOUT),
              "kubelet": (lambda: node_ready(d, server), _NODE_READY_TIMEOUT),
              "kube-scheduler": (lambda: kube_host.alive_for(read_pid(_pid_file(d, "kube-scheduler")), 1.0),
                                 _DAEMON_TIMEOUT),
              "kube-proxy": (_proxy_ready, _DAEMON_TIMEOUT)}
    try:
        for daemon in DAEMONS:
            spawn_daemon(args[daemon], log=d / f"{daemon}.log", pid_file=_pid_file(d, daemon), env=env, cwd=d)
            _wait(d, daemon, *checks[daemon])
            if daemon == "containerd":
                import_images(d, refs)
        _announce(d, server, refs)
    except BaseException:
        down(d, server)
        raise


def status(d: Path, server: str) -> dict:
    parts = {n: {"pid": read_pid(_pid_file(d, n)), "log": str(d / f"{n}.log")} for n in DAEMONS}
    running = all(pid_alive(p["pid"]) for p in parts.values())
    return {"node": {"name": NODE, "ready": running and node_ready(d, server), "bridge": BRIDGE,
                     "pod_subnet": POD_SUBNET}, "parts": parts}


def down(d: Path, server: str) -> None:
    """Stop the node and remove every trace of it from the host (the order matters)."""
    stop_pid(read_pid(_pid_file(d, "kube-scheduler")), timeout=10)  # no new pods from here on
    kube_host.delete_node_pods(d, server, NODE, kubelet_alive=pid_alive(read_pid(_pid_file(d, "kubelet"))))
    stop_pid(read_pid(_pid_file(d, "kube-proxy")), timeout=10)
    if (bin_proxy := kube_host.sibling_binary(d, "kube-proxy")) is not None:
        subprocess.run([str(bin_proxy), "--cleanup"], capture_output=True, timeout=60)
    stop_pid(read_pid(_pid_file(d, "kubelet")), timeout=15)
    kube_host.stop_leftover_tasks(d, sock(d))
    stop_pid(read_pid(_pid_file(d, "containerd")), timeout=15)
    for daemon in DAEMONS:
        _pid_file(d, daemon).unlink(missing_ok=True)
    kube_host.clean(d, BRIDGE)
