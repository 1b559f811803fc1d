"""Stack part: a single-node Ceph cluster (mon + mgr + one OSD) under `<home>/ceph`.

Auth is off and everything (conf, data, sockets, logs, pids) lives in the cluster's own
directory, so the demo's and the tests' clusters run side by side on different monitor
ports. The OSD is memstore by default (data in RAM, lost on restart: the stack then
recreates the cluster) or bluestore on a sparse file when more space is wanted.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from infra.local._proc import pid_alive, read_pid, stop_pid
from phoenix.config import Settings, parse_size
from phoenix.errors import StackError
from phoenix.proc import daemon_env, run
from phoenix.proc import mounts as proc_mounts

_DAEMONS = ("mon", "mgr", "osd")


def _dir(settings: Settings) -> Path:
    return settings.home_dir / "ceph"


def _pid(settings: Settings, daemon: str) -> Path:
    return _dir(settings) / "run" / f"{daemon}.pid"


def _conf_text(settings: Settings, fsid: str) -> str:
    d = _dir(settings)
    store = settings.rbd.objectstore
    extra = (f"memstore device bytes = {parse_size(settings.rbd.osd_size)}" if store == "memstore"
             else f"bluestore block path = {d / 'osd-block.img'}\nbluestore block create = true\n"
                  f"bluestore block size = {parse_size(settings.rbd.osd_size)}")
    return f"""[global]
fsid = {fsid}
mon host = 127.0.0.1:{settings.rbd.mon_port}
mon initial members = a
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon allow pool delete = true
osd crush chooseleaf type = 0
mon warn on pool no redundancy = false
rbd default features = layering
osd objectstore = {store}
{extra}
run dir = {d / 'run'}
admin socket = {d / 'run'}/$cluster-$name.$pid.asok
log file = {d / 'log'}/$name.log
pid file = {d / 'run'}/$type.pid
mon data = {d / 'mon'}/$name
osd data = {d / 'osd'}/$name
mgr data = {d / 'mgr'}/$name
keyring = /dev/null
mon warn on insecure global id reclaim allowed = false
osd max object name len = 256
osd max object namespace len = 64

[osd]
osd objectstore = {store}

[client]
keyring = /dev/null
rados mon op timeout = {settings.rbd.connect_timeout}
client mount timeout = {settings.rbd.connect_timeout}
"""


def _run(args: list[str], what: str, timeout: float = 60) -> str:
    return run(args, what, StackError, timeout)


def _ceph(settings: Settings, *args: str, timeout: float = 20) -> str:
    return _run(["ceph", "-c", str(settings.ceph_conf), f"--connect-timeout={int(timeout)}", *args],
                f"ceph {' '.join(args)}", timeout=timeout + 5)


def status(settings: Settings) -> dict | None:
    pids = {d: read_pid(_pid(settings, d)) for d in _DAEMONS}
    if not any(pid_alive(p) for p in pids.values()):
        return None
    info: dict = {"conf": str(settings.ceph_conf), "pool": settings.rbd.pool,
                  "mon": f"127.0.0.1:{settings.rbd.mon_port}", "pids": pids,
                  "objectstore": settings.rbd.objectstore}
    try:
        st = json.loads(_ceph(settings, "status", "--format=json", timeout=5))
        info["health"] = st["health"]["status"]
        info["osds_up"] = st["osdmap"].get("num_up_osds", st["osdmap"].get("osdmap", {}).get("num_up_osds", 0))
        info["mgr_available"] = bool((st.get("mgrmap") or {}).get("available"))
    except (StackError, ValueError, KeyError):
        info["health"] = "unreachable"
        info["osds_up"] = 0
        info["mgr_available"] = False
    return info


def _healthy(settings: Settings) -> bool:
    st = status(settings)
    return bool(st and all(pid_alive(p) for p in st["pids"].values()) and st["osds_up"] >= 1
                and _pool_ready(settings))


def _pool_ready(settings: Settings) -> bool:
    try:
        return settings.rbd.pool in _ceph(settings, "osd", "pool", "ls", timeout=5).split()
    except StackError:
        return False


def up(settings: Settings) -> dict:
    if _healthy(settings):  # a running cluster is never rebuilt for a mgr that is still coming up
        _wait(settings, lambda: (status(settings) or {}).get("mgr_available", False), "the mgr to be available", 120)
        return status(settings) or {}
    for tool in ("ceph-mon", "ceph-osd", "ceph-mgr", "ceph", "monmaptool", "ceph-authtool"):
        if shutil.which(tool) is None:
            raise StackError(f"{tool} not found: run `make install` (Debian ceph-mon, ceph-mgr, ceph-osd, ceph-common)")
    # Anything half-alive (or a memstore cluster whose data died with it) is rebuilt.
    down(settings)
    d = _dir(settings)
    if d.exists():
        shutil.rmtree(d)
    for sub in ("run", "log", "mon", "osd", "mgr"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    fsid = str(uuid.uuid4())
    conf = settings.ceph_conf
    conf.write_text(_conf_text(settings, fsid))
    try:
        _bootstrap(settings, fsid)
    except BaseException:
        down(settings)
        raise
    return status(settings) or {}


def _bootstrap(settings: Settings, fsid: str) -> None:
    d, conf = _dir(settings), str(settings.ceph_conf)
    keyring, monmap = d / "mon.keyring", d / "monmap"
    _run(["ceph-authtool", "--create-keyring", str(keyring), "--gen-key", "-n", "mon.", "--cap", "mon", "allow *"],
         "ceph-authtool")
    _run(["monmaptool", "--create", "--add", "a", f"127.0.0.1:{settings.rbd.mon_port}", "--fsid", fsid,
          str(monmap)], "monmaptool")
    _run(["ceph-mon", "-c", conf, "--mkfs", "-i", "a", "--monmap", str(monmap), "--keyring", str(keyring)],
         "ceph-mon --mkfs")
    _start(settings, ["ceph-mon", "-c", conf, "-i", "a"], "mon")
    _wait(settings, lambda: _try(lambda: _ceph(settings, "mon", "stat", timeout=5)), "the monitor to answer", 30)
    osd_id = _ceph(settings, "osd", "create").strip()
    (d / "osd" / f"osd.{osd_id}").mkdir(parents=True, exist_ok=True)
    (d / "mgr" / "mgr.x").mkdir(parents=True, exist_ok=True)
    _run(["ceph-osd", "-c", conf, "-i", osd_id, "--mkfs"], "ceph-osd --mkfs", timeout=120)
    _start(settings, ["ceph-osd", "-c", conf, "-i", osd_id], "osd")
    _start(settings, ["ceph-mgr", "-c", conf, "-i", "x"], "mgr")
    _wait(settings, lambda: (status(settings) or {}).get("osds_up", 0) >= 1, "the OSD to come up", 60)
    # `ceph -s` shows the cluster usable only once the mgr is available (seen false right
    # after the OSD came up, on a loaded machine): up returns when a user's `ceph -s` would agree.
    _wait(settings, lambda: (status(settings) or {}).get("mgr_available", False), "the mgr to be available", 120)
    pool = settings.rbd.pool
    _ceph(settings, "osd", "pool", "create", pool, "8")
    _run(["rbd", "-c", conf, "pool", "init", pool], f"rbd pool init {pool}", timeout=60)


def _start(settings: Settings, args: list[str], daemon: str) -> None:
    # Ceph daemons fork into the background themselves and write their pid file
    # (`pid file` in the conf); we wait for it.
    res = subprocess.run(args, capture_output=True, text=True, timeout=60, env=daemon_env())
    if res.returncode != 0:
        detail = (res.stderr or res.stdout).strip().splitlines()
        raise StackError(f"starting ceph-{daemon} failed: {detail[-1] if detail else res.returncode}")
    _wait(settings, lambda: pid_alive(read_pid(_pid(settings, daemon))), f"ceph-{daemon} to start", 20)


def _try(fn) -> bool:
    try:
        fn()
        return True
    except StackError:
        return False


def _wait(settings: Settings, ok, what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.25)
    raise StackError(f"timed out waiting for {what}; see {_dir(settings) / 'log'}")


def down(settings: Settings) -> None:
    # Attachments first: a mounted rbd-fuse/loop would keep the cluster's clients busy.
    _release_attachments(settings)
    for daemon in ("mgr", "osd", "mon"):
        # ceph-osd may ignore SIGTERM for a few seconds; stop_pid escalates to SIGKILL.
        stop_pid(read_pid(_pid(settings, daemon)), timeout=10, group=False)
        _pid(settings, daemon).unlink(missing_ok=True)


def _release_attachments(settings: Settings) -> None:
    """Unmount filesystems, detach loops and stop rbd-fuse under `<home>/rbd`."""
    root = settings.home_dir / "rbd"
    if not root.exists():
        return
    mounts = [tuple(m) for m in proc_mounts() if m.path.startswith(str(root) + "/")]
    for dev, mnt, fstype in sorted(mounts, key=lambda m: -len(m[1])):
        if fstype.startswith("fuse"):
            continue
        # Not lazily: a server still writing there would keep its loop and rbd-fuse alive,
        # and once the cluster is gone that rbd-fuse hangs every later `losetup` on the host.
        res = subprocess.run(["umount", mnt], capture_output=True, text=True)
        if res.returncode != 0:
            raise StackError(f"cannot unmount {mnt} ({res.stderr.strip() or res.returncode}): stop the servers "
                             "using it (`phoenix teardown …`) and retry; the Ceph cluster is still running")
        if dev.startswith("/dev/loop"):
            subprocess.run(["losetup", "-d", dev], capture_output=True)
    for _dev, mnt, fstype in mounts:
        if fstype.startswith("fuse"):
            # Loops still pointing into the fuse mount must go before it.
            res = subprocess.run(["losetup", "-a"], capture_output=True, text=True)
            for line in res.stdout.splitlines():
                if f"({mnt}/" in line:
                    subprocess.run(["losetup", "-d", line.split(":", 1)[0]], capture_output=True)
            subprocess.run(["fusermount3", "-u", "-z", mnt], capture_output=True)
            subprocess.run(["umount", "-l", mnt], capture_output=True)
    # No host-wide sync here: each umount wrote its own filesystem back.
