"""Stack part: a btrfs filesystem on a sparse loop file, for the `local` storage backend.

The backing file `<home>/btrfs.img` stays when the stack goes down, so images (goldens,
environments) survive `phoenix stack down` / `up`; delete it to start from scratch.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from phoenix.config import Settings, parse_size
from phoenix.errors import StackError
from phoenix.proc import mounted_at, run


def _file(settings: Settings) -> Path:
    return settings.home_dir / "btrfs.img"


def _run(args: list[str], what: str) -> str:
    return run(args, what, StackError)


def mounted_device(mount: Path) -> str | None:
    """The device mounted at `mount` (from /proc/mounts), if any."""
    found = mounted_at(mount)
    return found.device if found and found.fstype == "btrfs" else None


def status(settings: Settings) -> dict | None:
    mount = settings.btrfs_mount
    dev = mounted_device(mount)
    if dev is None:
        return None
    st = os.statvfs(mount)
    return {"mount": str(mount), "loop": dev, "file": str(_file(settings)),
            "size_bytes": st.f_blocks * st.f_frsize,
            "used_bytes": (st.f_blocks - st.f_bfree) * st.f_frsize}


def up(settings: Settings) -> dict:
    current = status(settings)
    if current:
        return current
    if os.geteuid() != 0:
        raise StackError("mounting the btrfs pool needs root: run as root")
    img, mount = _file(settings), settings.btrfs_mount
    img.parent.mkdir(parents=True, exist_ok=True)
    if not img.exists():
        with open(img, "wb") as f:  # sparse: only written blocks take disk space
            f.truncate(parse_size(settings.local.size))
        _run(["mkfs.btrfs", "-q", "-L", "phoenix", str(img)], f"mkfs.btrfs {img}")
    mount.mkdir(parents=True, exist_ok=True)
    loop = _run(["losetup", "--find", "--show", str(img)], f"attaching {img} to a loop device "
                "(are loop devices available? `modprobe loop`)").strip()
    try:
        _run(["mount", "-t", "btrfs", "-o", "noatime", loop, str(mount)], f"mounting {loop} at {mount}")
        # Quota groups give each subvolume's exclusive bytes: what a clone really uses.
        _run(["btrfs", "quota", "enable", str(mount)], "enabling btrfs quotas")
    except StackError:
        subprocess.run(["umount", str(mount)], capture_output=True)
        subprocess.run(["losetup", "-d", loop], capture_output=True)
        raise
    return status(settings) or {}


def down(settings: Settings) -> None:
    mount = settings.btrfs_mount
    dev = mounted_device(mount)
    if dev is None:
        _detach_loops(_file(settings))
        return
    res = subprocess.run(["umount", str(mount)], capture_output=True, text=True)
    if res.returncode != 0:
        raise StackError(f"cannot unmount {mount} ({res.stderr.strip()}): stop the servers using it "
                         "(`phoenix teardown …`) and retry")
    _detach_loops(_file(settings))


def _detach_loops(img: Path) -> None:
    res = subprocess.run(["losetup", "-j", str(img)], capture_output=True, text=True)
    for line in res.stdout.splitlines():
        loop = line.split(":", 1)[0]
        subprocess.run(["losetup", "-d", loop], capture_output=True)
