"""Stack part: a single-node Kubernetes cluster — etcd, kube-apiserver and
kube-controller-manager on 127.0.0.1 here, and the node (containerd, kubelet,
kube-scheduler, kube-proxy; `kube_node.py`) running images built here (`images.py`).

The Kubernetes binaries come from `build-kubernetes.sh` (Debian's `kubernetes` source
package, built once and cached outside the repository). Node,RBAC authorization is on,
so the worker's least-privilege role in `infra/k8s/` and the kubelet's own identity are
checked for real. `up(settings, node=False)` starts the control plane alone (the node
is host-wide: one per machine).
State under `<home>/kube/`: etcd data, the certificates (`kube_pki.py`), the
service-account key, a token file and the kubeconfig (mode 0600: it holds the admin
token), the node's configuration, roots and logs.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from infra.local import kube_host, kube_node, kube_pki
from infra.local._proc import pid_alive, read_pid, spawn_daemon, stop_pid
from phoenix.config import Settings
from phoenix.errors import StackError
from phoenix.proc import daemon_env
from tasks.runtime.kubernetes.node import CEPH_CSI

_BUILD = Path(__file__).with_name("build-kubernetes.sh")
_DAEMONS = ("etcd", "kube-apiserver", "kube-controller-manager")  # start order
_READY_TIMEOUT = 90.0
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # the `kubernetes` Service


def _dir(settings: Settings) -> Path:
    return settings.home_dir / "kube"


def kubeconfig_path(settings: Settings) -> Path:
    return _dir(settings) / "kubeconfig"


def _pid_file(settings: Settings, daemon: str) -> Path:
    return _dir(settings) / f"{daemon}.pid"


def server_url(settings: Settings) -> str:
    return f"https://127.0.0.1:{settings.kubernetes.api_port}"


def binaries(progress=lambda m: print(m, file=sys.stderr)) -> Path:
    """The directory with kube-apiserver and kube-controller-manager, building them the
    first time (several minutes; the build script prints its progress)."""
    from phoenix.config import get_settings

    override = get_settings().kube_bin
    if override:
        return Path(override)
    progress("kubernetes: looking for cached kube-apiserver/kube-controller-manager "
             "(the first run builds them from Debian's source package: ~6 min)")
    res = subprocess.run(["bash", str(_BUILD)], stdout=subprocess.PIPE, text=True, timeout=3600)
    if res.returncode != 0 or not res.stdout.strip():
        raise StackError("building kube-apiserver/kube-controller-manager failed (see the lines above): "
                         "fix the cause and re-run `phoenix stack up --kubernetes`")
    return Path(res.stdout.strip().splitlines()[-1])


def _healthy(settings: Settings, timeout: float = 2.0) -> bool:
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # liveness only, no data sent
    try:
        with urllib.request.urlopen(f"{server_url(settings)}/readyz", timeout=timeout, context=ctx) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):  # HTTPError (not ready yet) is a URLError
        return False


def _port_busy(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def node_ip() -> str:
    """The host's source address for outside traffic (a route lookup: nothing is sent)."""
    out = subprocess.run(["ip", "-o", "-4", "route", "get", "192.0.2.1"], capture_output=True,
                         text=True, timeout=10).stdout.split()
    if "src" not in out:
        raise StackError("no IPv4 address with a default route on this host: the node needs one "
                         "(check `ip -4 route`)")
    return out[out.index("src") + 1]


def _prepare(settings: Settings) -> str:
    """Keys and the token file (kept across restarts); returns the admin token."""
    d = _dir(settings)
    (d / "pki").mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    kube_pki.ensure(d / "pki", node=kube_node.NODE, node_ip=node_ip(), service_ip=SERVICE_IP)
    sa_key = d / "pki" / "sa.key"
    if not sa_key.exists():
        subprocess.run(["openssl", "genrsa", "-out", str(sa_key), "2048"], check=True, capture_output=True)
        os.chmod(sa_key, 0o600)
    tokens = d / "tokens.csv"
    if not tokens.exists():
        _write_private(tokens, f"{secrets.token_hex(24)},phoenix-admin,phoenix-admin,system:masters\n")
    return tokens.read_text().split(",", 1)[0]


def _write_kubeconfig(settings: Settings, token: str) -> Path:
    crt = _dir(settings) / "pki" / "ca.crt"
    ca = base64.b64encode(crt.read_bytes()).decode()
    path = kubeconfig_path(settings)
    _write_private(path, f"""apiVersion: v1
kind: Config
clusters:
- name: phoenix-local
  cluster: {{server: "{server_url(settings)}", certificate-authority-data: "{ca}"}}
users:
- name: phoenix-admin
  user: {{token: "{token}"}}
contexts:
- name: phoenix-local
  context: {{cluster: phoenix-local, user: phoenix-admin}}
current-context: phoenix-local
""")
    return path


def _args(settings: Settings, bin_dir: Path) -> dict[str, list[str]]:
    d, k = _dir(settings), settings.kubernetes
    etcd_url = f"http://127.0.0.1:{k.etcd_port}"
    sa_key = str(d / "pki" / "sa.key")
    return {
        "etcd": ["etcd", "--name", "phoenix", "--data-dir", str(d / "etcd"),
                 "--listen-client-urls", etcd_url, "--advertise-client-urls", etcd_url,
                 "--listen-peer-urls", f"http://127.0.0.1:{k.etcd_port + 1}",
                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{k.etcd_port + 1}",
                 "--initial-cluster", f"phoenix=http://127.0.0.1:{k.etcd_port + 1}",
                 "--listen-metrics-urls", ""],
        "kube-apiserver": [
            str(bin_dir / "kube-apiserver"), f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={k.api_port}",
            "--insecure-port=0", f"--cert-dir={d / 'pki'}", f"--token-auth-file={d / 'tokens.csv'}",
            f"--tls-cert-file={d / 'pki' / 'serving.crt'}", f"--tls-private-key-file={d / 'pki' / 'serving.key'}",
            f"--client-ca-file={d / 'pki' / 'ca.crt'}",
            f"--kubelet-client-certificate={d / 'pki' / 'apiserver-kubelet-client.crt'}",
            f"--kubelet-client-key={d / 'pki' / 'apiserver-kubelet-client.key'}",
            "--kubelet-preferred-address-types=InternalIP",
            "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction", "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={sa_key}", f"--service-account-signing-key-file={sa_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--allow-privileged=true",
            "--endpoint-reconciler-type=none", "--logtostderr=true", "--v=0"],
        "kube-controller-manager": [
            str(bin_dir / "kube-controller-manager"), f"--kubeconfig={kubeconfig_path(settings)}",
            "--leader-elect=false", f"--service-account-private-key-file={sa_key}",
            # Each controller with its own service account (as system:kube-controller-manager
            # the PV binder cannot update persistentvolumes/status: PVCs never bind).
            f"--root-ca-file={d / 'pki' / 'ca.crt'}", "--use-service-account-credentials=true",
            "--port=0", "--secure-port=0", "--bind-address=127.0.0.1", "--logtostderr=true", "--v=0",
            f"--flex-volume-plugin-dir={d / 'kubelet-plugins'}",  # not /usr/libexec/kubernetes/…
            # A static PV and its claim, applied together, often bound only at the binder's next
            # resync (15 s by default: 5–15 s measured), and the pod waits for that.
            "--pvclaimbinder-sync-period=1s"],
    }


def status(settings: Settings) -> dict | None:
    pids = {d: read_pid(_pid_file(settings, d)) for d in _DAEMONS}
    if not all(pid_alive(p) for p in pids.values()):
        return None
    out = {"kubeconfig": str(kubeconfig_path(settings)), "server": server_url(settings),
           "healthy": _healthy(settings), "pids": pids, "log_dir": str(_dir(settings))}
    if _node_wanted(settings):
        out.update(kube_node.status(_dir(settings), server_url(settings)))
        out["parts"] = {**{d: {"pid": p} for d, p in pids.items()}, **out["parts"]}
    # What `kubernetes.volumes = "auto"` picks here (tasks/runtime/kubernetes/node.py).
    csi = kube_host.api(_dir(settings), server_url(settings), "GET", f"/apis/storage.k8s.io/v1/csidrivers/{CEPH_CSI}")
    out["volumes"] = "csi" if csi else "local"
    return out


def _node_wanted(settings: Settings) -> bool:
    return (_dir(settings) / "node.wanted").exists()


def _wait(settings: Settings, check, what: str, daemon: str) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT
    while time.monotonic() < deadline:
        if check():
            return
        if not pid_alive(read_pid(_pid_file(settings, daemon))):
            break
        time.sleep(0.3)
    log = _dir(settings) / f"{daemon}.log"
    down(settings)
    raise StackError(f"{what} did not come up; see {log}")


def _check_ports(settings: Settings) -> None:
    k = settings.kubernetes
    for port, what in ((k.api_port, "kubernetes.api_port"), (k.etcd_port, "kubernetes.etcd_port"),
                       (k.etcd_port + 1, "kubernetes.etcd_port + 1 (etcd peer)")):
        if _port_busy(port):
            raise StackError(f"port {port} ({what}) is taken by another process: stop it or set "
                             f"PHOENIX_KUBERNETES__{what.split('.')[1].split()[0].upper()}")


def _control_plane(settings: Settings, bin_dir: Path) -> None:
    k = settings.kubernetes
    token = _prepare(settings)
    d = _dir(settings)
    args = _args(settings, bin_dir)
    # Only the minimal environment: no secret of ours, and no KUBECONFIG/ETCD_* to override the flags.
    env = daemon_env()
    spawn_daemon(args["etcd"], log=d / "etcd.log", pid_file=_pid_file(settings, "etcd"), env=env, cwd=d)
    _wait(settings, lambda: _port_busy(k.etcd_port), f"etcd on 127.0.0.1:{k.etcd_port}", "etcd")
    spawn_daemon(args["kube-apiserver"], log=d / "kube-apiserver.log",
                 pid_file=_pid_file(settings, "kube-apiserver"), env=env, cwd=d)
    _wait(settings, lambda: _healthy(settings), f"kube-apiserver on {server_url(settings)}", "kube-apiserver")
    _write_kubeconfig(settings, token)
    spawn_daemon(args["kube-controller-manager"], log=d / "kube-controller-manager.log",
                 pid_file=_pid_file(settings, "kube-controller-manager"), env=env, cwd=d)
    time.sleep(0.5)
    if not pid_alive(read_pid(_pid_file(settings, "kube-controller-manager"))):
        down(settings)
        raise StackError(f"kube-controller-manager exited; see {d / 'kube-controller-manager.log'}")


def up(settings: Settings, *, node: bool = True) -> dict:
    """Start the control plane and (with `node`) the node; idempotent."""
    current = status(settings)
    if not (current and current["healthy"]):
        if current or any(pid_alive(read_pid(_pid_file(settings, d))) for d in _DAEMONS):
            down(settings)  # half-running: start over cleanly
        _check_ports(settings)
        if shutil.which("etcd") is None:
            raise StackError("etcd not found: install Debian's etcd-server (`make install` does)")
        _control_plane(settings, binaries())
    if node:
        (_dir(settings) / "node.wanted").touch()
        try:
            kube_node.up(_dir(settings), binaries(lambda m: None), server_url(settings),
                         kubeconfig_path(settings), node_ip())
        except BaseException:
            down(settings)
            raise
    return status(settings) or {}


def down(settings: Settings) -> None:
    d = _dir(settings)
    if _node_wanted(settings) or (d / "containerd.toml").exists():
        kube_node.down(d, server_url(settings))  # needs the API server: first
        (d / "node.wanted").unlink(missing_ok=True)
    for daemon in reversed(_DAEMONS):
        stop_pid(read_pid(_pid_file(settings, daemon)), timeout=15)
        _pid_file(settings, daemon).unlink(missing_ok=True)
