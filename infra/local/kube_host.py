"""What the local node changes on the host, and how `down` undoes it (notes/kubelet.md,
"Teardown"): pods deleted through the API first (CNI DEL removes veths, nat chains and
IP leases), then whatever is left — the kubelet's and kube-proxy's iptables chains
(KUBE-FIREWALL drops non-loopback traffic to 127/8!), mounts under the state
directory, the bridge, the kubepods cgroups, hard-coded directories and the sysctls.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

# Changed by the kubelet (overcommit, panic), the bridge plugin (ip_forward) and
# kube-proxy (route_localnet); recorded at `up`, written back at `down`.
SYSCTLS = ("vm.overcommit_memory", "vm.panic_on_oom", "kernel.panic", "kernel.panic_on_oops",
           "kernel.keys.root_maxkeys", "kernel.keys.root_maxbytes", "net.ipv4.ip_forward",
           "net.ipv4.conf.all.route_localnet", "net.ipv4.conf.all.forwarding",
           "net.ipv4.conf.default.forwarding")
# Paths the parts create whatever their configuration says; removed if `up` made them
# (children before parents; a parent only if it is empty then).
HOST_DIRS = ("/run/containerd/s", "/run/containerd/fifo", "/run/containerd/runc", "/run/containerd",
             "/var/lib/cni/results", "/var/lib/cni", "/var/log/pods", "/var/log/containers",
             "/var/lib/kubelet/device-plugins", "/var/lib/kubelet",
             "/usr/libexec/kubernetes/kubelet-plugins/volume/exec",
             "/usr/libexec/kubernetes/kubelet-plugins/volume", "/usr/libexec/kubernetes/kubelet-plugins",
             "/usr/libexec/kubernetes")
_TREES = ("/run/containerd/s", "/run/containerd/fifo", "/run/containerd/runc", "/var/lib/cni/results",
          "/var/log/pods", "/var/log/containers", "/var/lib/kubelet/device-plugins")  # the rest: rmdir
_CHAIN_PREFIXES = ("KUBE-", "CNI-")
_POD_GONE_TIMEOUT = 120.0


def port_busy(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def alive_for(pid: int | None, seconds: float) -> bool:
    """True once process `pid` has been running for `seconds` (it did not exit at start)."""
    try:
        start = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return uptime - start / os.sysconf("SC_CLK_TCK") >= seconds


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def record_sysctls(d: Path) -> None:
    """Keep the host's values once (a second `up` after a failed one must not record ours),
    and which of HOST_DIRS existed already."""
    saved = d / "host-before.json"
    if saved.exists():
        return
    values = {n: _sysctl_path(n).read_text().strip() for n in SYSCTLS if _sysctl_path(n).exists()}
    saved.write_text(json.dumps({"sysctls": values, "dirs": [p for p in HOST_DIRS if os.path.exists(p)],
                                 "nft_tables": _nft_tables()}))


def _nft_tables() -> list[str]:
    """`ip filter`, `ip6 nat`, … (iptables here is iptables-nft: the kubelet's first rule
    creates the table, and an empty table still shows in iptables-save)."""
    if not shutil.which("nft"):
        return []
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, timeout=30).stdout
    return [ln.split(None, 1)[1] for ln in out.splitlines() if ln.startswith("table ")]


def _drop_new_empty_tables(before: list[str]) -> None:
    for table in _nft_tables():
        if table in before:
            continue
        family, name = table.split()
        cmd = {"ip": "iptables-save", "ip6": "ip6tables-save"}.get(family)
        if cmd is None:
            continue
        dump = subprocess.run([cmd, "-t", name], capture_output=True, text=True, timeout=30).stdout
        if not any(ln.startswith("-A ") for ln in dump.splitlines()):  # nothing of anyone's in it
            subprocess.run(["nft", "delete", "table", family, name], capture_output=True, timeout=30)


def _restore(d: Path) -> None:
    saved = d / "host-before.json"
    if not saved.exists():
        return
    before = json.loads(saved.read_text())
    _drop_new_empty_tables(before.get("nft_tables", []))
    for name, value in before["sysctls"].items():
        path = _sysctl_path(name)
        if path.exists() and path.read_text().strip() != value:
            path.write_text(value + "\n")
    for p in HOST_DIRS:  # children first: the tuple lists them before their parents
        if p not in before["dirs"] and os.path.isdir(p):
            shutil.rmtree(p, ignore_errors=True) if p in _TREES else _rmdir(p)
    saved.unlink()


def _rmdir(p: str) -> None:
    try:
        os.rmdir(p)
    except OSError:
        pass  # not empty: something else uses it


def api(d: Path, server: str, method: str, path: str, timeout: float = 5.0, patch: dict | None = None) -> dict | None:
    """One admin request (the token of kube.py's token file), `patch` a JSON merge patch;
    None when it fails."""
    try:
        ctx = ssl.create_default_context(cafile=str(d / "pki" / "ca.crt"))
        token = (d / "tokens.csv").read_text().split(",", 1)[0]
    except OSError:
        return None
    headers = {"Authorization": f"Bearer {token}"}
    if patch is not None:
        headers["Content-Type"] = "application/merge-patch+json"
    req = urllib.request.Request(server + path, method=method, headers=headers,
                                 data=None if patch is None else json.dumps(patch).encode())
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            return json.load(resp)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def delete_node_pods(d: Path, server: str, node: str, *, kubelet_alive: bool) -> None:
    """Delete the pods bound to `node` and wait until its kubelet has torn them down
    (without a kubelet: remove them from the API at once; the fallbacks clean up)."""
    path = f"/api/v1/pods?fieldSelector=spec.nodeName%3D{node}"
    pods = api(d, server, "GET", path)
    if pods is None:
        return  # no API server: the fallbacks below clean up
    grace = 2 if kubelet_alive else 0
    for pod in pods.get("items", []):
        meta = pod["metadata"]
        api(d, server, "DELETE", f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}"
                                 f"?gracePeriodSeconds={grace}")
    if not kubelet_alive:
        return
    deadline = time.monotonic() + _POD_GONE_TIMEOUT
    while time.monotonic() < deadline:
        left = api(d, server, "GET", path)
        if left is None or not left.get("items"):
            return
        time.sleep(0.5)


def sibling_binary(d: Path, name: str) -> Path | None:
    try:
        path = Path((d / "bin-dir").read_text().strip()) / name
    except OSError:
        return None
    return path if path.exists() else None


def stop_leftover_tasks(d: Path, sock: Path) -> None:
    """Containers the kubelet did not stop (it crashed, or the API was gone): kill their
    shims — found by our containerd socket on their command line, nothing else."""
    needle = f"-address\0{sock}\0".encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if b"containerd-shim" in cmdline.split(b"\0", 1)[0] and needle in cmdline:
            _kill_tree(int(proc.name))


def _kill_tree(pid: int) -> None:
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split() if Path(f"/proc/{pid}").exists() else []:
        _kill_tree(int(child))
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass


def _iptables_chains(cmd: str) -> None:
    """Remove every KUBE-*/CNI-* chain and the rules jumping to them, table by table."""
    for table in ("filter", "nat", "mangle", "raw"):
        res = subprocess.run([f"{cmd}-save", "-t", table], capture_output=True, text=True, timeout=30)
        if res.returncode != 0:
            continue
        lines = res.stdout.splitlines()
        chains = [ln[1:].split()[0] for ln in lines if ln.startswith(":") and ln[1:].startswith(_CHAIN_PREFIXES)]
        for ln in lines:
            words = shlex.split(ln) if ln.startswith("-A ") else []
            if words and not words[1].startswith(_CHAIN_PREFIXES) and \
                    any(w.startswith(_CHAIN_PREFIXES) for w in words[2:]):
                subprocess.run([cmd, "-w", "-t", table, "-D", *words[1:]], capture_output=True, timeout=30)
        for flag in ("-F", "-X"):
            for chain in chains:
                subprocess.run([cmd, "-w", "-t", table, flag, chain], capture_output=True, timeout=30)


def _unmount_under(d: Path) -> None:
    """Everything mounted under the state directory (the kubelet's bind mount of its root,
    pod volumes, sandbox netns and shm, container rootfs), deepest first."""
    prefix = str(d) + "/"
    with open("/proc/self/mounts") as f:
        points = [ln.split()[1].encode().decode("unicode_escape") for ln in f]
    for mp in sorted({p for p in points if p.startswith(prefix)}, key=len, reverse=True):
        if subprocess.run(["umount", mp], capture_output=True, timeout=30).returncode != 0:
            subprocess.run(["umount", "-l", mp], capture_output=True, timeout=30)


def _rm_cgroups(name: str) -> None:
    for top in Path("/sys/fs/cgroup").glob(f"*/{name}"):
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: len(w[0]), reverse=True):
            _rmdir(dirpath)


def clean(d: Path, bridge: str) -> None:
    for cmd in ("iptables", "ip6tables"):
        if shutil.which(cmd):
            _iptables_chains(cmd)
    _unmount_under(d)
    if Path(f"/sys/class/net/{bridge}").exists():
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, timeout=30)
    _rm_cgroups("kubepods")
    _restore(d)
