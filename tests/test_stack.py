"""The local stack's parts on a throwaway state directory: idempotent up, exact down."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from infra.local import btrfs, ceph
from phoenix.config import load_settings
from phoenix.errors import StackError
from phoenix.proc import pid_alive
from tasks.runtime.mariadb import free_port
from tasks.storage import open_storage
from tests.conftest import REPO


@pytest.fixture
def throwaway(tmp_path_factory):
    home = tmp_path_factory.mktemp("stack")
    s = load_settings(home=home, local={"size": "1G"}, rbd={"mon_port": free_port(), "pool": "tmp", "osd_size": "1G"},
                      prefect={"port": free_port()})
    yield s
    ceph.down(s)
    btrfs.down(s)


def _mounts() -> str:
    return open("/proc/self/mounts").read()


def _rbd_fuse_pids(conf: str) -> list[str]:
    out = subprocess.run(["pgrep", "-f", f"rbd-fuse -c {conf}"], capture_output=True, text=True).stdout
    return out.split()


def test_btrfs_up_twice_then_down_leaves_no_mount_or_loop(throwaway):
    first = btrfs.up(throwaway)
    assert btrfs.up(throwaway) == first
    assert first["mount"] in _mounts() and first["loop"].startswith("/dev/loop")
    btrfs.down(throwaway)
    assert btrfs.status(throwaway) is None and first["mount"] not in _mounts()
    out = subprocess.run(["losetup", "-j", first["file"]], capture_output=True, text=True).stdout
    assert out.strip() == ""


def test_ceph_up_is_healthy_and_down_leaves_no_process(throwaway):
    info = ceph.up(throwaway)
    assert info["osds_up"] == 1 and set(info["pids"]) == {"mon", "mgr", "osd"}
    st = json.loads(subprocess.run(["ceph", "-c", info["conf"], "status", "--format=json"], capture_output=True,
                                   text=True, timeout=30).stdout)
    assert st["monmap"]["num_mons"] == 1 and st["osdmap"]["num_up_osds"] == 1
    assert st["mgrmap"]["available"] is True
    assert ceph.up(throwaway)["pids"] == info["pids"]  # up twice: the same daemons
    # An image still in use (a server's open file) stops the down, before any daemon stops:
    # a lazy unmount would leave its rbd-fuse hanging once the cluster is gone.
    with open_storage(throwaway.model_copy(update={"storage": "rbd"})) as st:
        st.create("held", 64 << 20)
        mnt = st.attach("held")
    with open(mnt / "in-use", "w"):
        with pytest.raises(StackError, match=f"cannot unmount {mnt}"):
            ceph.down(throwaway)
        assert ceph.status(throwaway) is not None
    ceph.down(throwaway)
    assert not _rbd_fuse_pids(info["conf"])
    assert ceph.status(throwaway) is None
    assert not any(pid_alive(p) for p in info["pids"].values())


def test_down_stops_the_servers_of_its_home_first_and_leaves_nothing(throwaway):
    """After `make demo` (two environments running) `stack down` stopped Prefect, then failed to
    unmount btrfs ("target is busy") with the servers still running on the pool."""
    from infra.local import stack
    from tasks.runtime.local import LocalRuntime

    info = btrfs.up(throwaway)
    with open_storage(throwaway) as st:
        st.create("env-held", 256 << 20)
        rt = LocalRuntime(throwaway, st)
        rt.start("held", "env-held", profile="environment")
        pid = rt.wait_ready("held").pid
    assert pid and pid_alive(pid)
    said: list[str] = []
    stack.down(throwaway, progress=said.append)
    assert not pid_alive(pid) and any("stopped 1 (held)" in m for m in said), said
    assert btrfs.status(throwaway) is None and info["mount"] not in _mounts()
    out = subprocess.run(["losetup", "-j", info["file"]], capture_output=True, text=True).stdout
    assert out.strip() == ""


def test_status_json_shape_and_bad_config_is_one_line():
    env = {**os.environ}
    res = subprocess.run([str(REPO / ".venv/bin/phoenix"), "stack", "status", "--json"], capture_output=True,
                         text=True, env=env)
    data = json.loads(res.stdout)
    assert {"btrfs", "ceph", "prefect", "kubernetes"} <= set(data)
    assert data["prefect"]["url"].startswith("http://127.0.0.1:")
    res = subprocess.run([str(REPO / ".venv/bin/phoenix"), "stack", "status"], capture_output=True, text=True,
                         env={**env, "PHOENIX_STORAGE": "zfs"})
    assert res.returncode == 2
    assert res.stderr.strip() == ("phoenix: error: configuration key 'storage': 'zfs' is not accepted; "
                                  "expected 'local' or 'rbd'")


def test_read_only_state_directory_is_a_clear_error():
    res = subprocess.run([str(REPO / ".venv/bin/phoenix"), "stack", "up"], capture_output=True, text=True,
                         env={**os.environ, "PHOENIX_HOME": "/proc/phoenix"})
    assert res.returncode != 0
    assert res.stderr.strip().splitlines()[-1].startswith("phoenix: error: state directory /proc/phoenix")
