"""Putting a filesystem on an RBD image and mounting it.

Real hosts map images with the kernel client (`rbd device map`); this machine has no
`rbd`/`nbd` kernel module, so the fallback exposes each attached image as a file
through its own `rbd-fuse -r <image>` mount, puts it on a loop device and mounts that.
One fuse mount per image, because rbd-fuse keeps a watch on every image it opened
until it exits, and RBD refuses to remove a watched image. Order matters both ways:
fuse → loop → mount, and on detach umount → loop → fuse.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

from phoenix.locks import file_lock
from phoenix.proc import daemon_env, mounted_at, run
from tasks.storage.base import Stalled, StorageError, Unavailable


def _run(args: list[str], what: str, timeout: float = 120, env: dict[str, str] | None = None) -> str:
    return run(args, what, StorageError, timeout, env=env)


def mount_source(path: Path) -> str | None:
    found = mounted_at(path)
    return found.device if found else None


class FuseAttacher:
    """rbd-fuse + loop + mount, under `root` (`<root>/fuse/<image>`, `<root>/mnt/<image>`)."""

    def __init__(self, root: Path, conf: Path, pool: str, op_timeout: int = 60) -> None:
        self.root, self.conf, self.pool, self.op_timeout = root, conf, pool, op_timeout
        self.fuse_dir = root / "fuse"
        self.mnt_dir = root / "mnt"
        self.lock_dir = root / "locks"

    def _bounded(self, args: list[str], what: str, hint: str = "") -> str:
        """A step that waits on the cluster (through rbd-fuse, which has no timeout of its own):
        within rbd.op_timeout, or a one-line Stalled."""
        return run(args, what + hint, StorageError, self.op_timeout, on_timeout=lambda: stalled(what, self.op_timeout))

    def _locked(self, name: str) -> contextlib.AbstractContextManager[bool]:
        return file_lock(self.lock_dir / f"{name}.lock")

    def _fuse(self, image: str) -> Path:
        """The file of `image`, through an rbd-fuse mount of its own (started if needed)."""
        fuse = self.fuse_dir / image
        if mount_source(fuse) is None:
            fuse.mkdir(parents=True, exist_ok=True)
            _run(
                ["rbd-fuse", "-c", str(self.conf), "-p", self.pool, "-r", image, str(fuse)],
                f"rbd-fuse for image {image!r} (cluster up? `phoenix stack up --ceph`)",
                timeout=30,
                env=daemon_env(),
            )  # it stays running: none of our secrets in its environ
        path = fuse / image
        for _ in range(50):
            if path.exists():
                return path
            time.sleep(0.1)
        raise StorageError(f"image {image!r} is not visible through rbd-fuse at {fuse}")

    def _loop_of(self, file: Path) -> str | None:
        out = subprocess.run(["losetup", "-j", str(file)], capture_output=True, text=True).stdout
        return out.split(":", 1)[0] if out.strip() else None

    def _until_released(self, file: Path) -> None:
        """`losetup -d` of a loop still in use (an unmount that was just interrupted, by a
        stall for one) only marks it for release: the loop keeps rbd-fuse's file open, and
        rbd-fuse cannot stop, until the kernel lets go."""
        deadline = time.monotonic() + self.op_timeout
        while self._loop_of(file):
            if time.monotonic() > deadline:
                raise stalled(f"releasing the loop device of {file.name!r}", self.op_timeout)
            time.sleep(0.1)

    def attached(self, image: str) -> Path | None:
        mnt = self.mnt_dir / image
        return mnt if mount_source(mnt) is not None else None

    def attach(self, image: str) -> Path:
        with self._locked(image):
            mnt = self.mnt_dir / image
            if mount_source(mnt) is not None:
                return mnt
            file = self._fuse(image)
            loop = (
                self._loop_of(file)
                or self._bounded(["losetup", "--find", "--show", str(file)], f"losetup for image {image!r}").strip()
            )
            try:
                fstype = subprocess.run(
                    ["blkid", "-p", "-o", "value", "-s", "TYPE", loop],  # -p: no stale cache
                    capture_output=True,
                    text=True,
                ).stdout.strip()
                if not fstype:  # first attach of a new image
                    _run(
                        [
                            "mkfs.ext4",
                            "-q",
                            "-F",
                            "-m",
                            "0",
                            "-E",
                            "nodiscard,lazy_itable_init=1,lazy_journal_init=1",
                            loop,
                        ],
                        f"mkfs.ext4 on image {image!r}",
                        timeout=600,
                    )
                mnt.mkdir(parents=True, exist_ok=True)
                self._bounded(["mount", "-t", "ext4", "-o", "noatime", loop, str(mnt)], f"mounting image {image!r}")
            except BaseException:
                subprocess.run(["losetup", "-d", loop], capture_output=True)
                raise
            return mnt

    def detach(self, image: str) -> None:
        with self._locked(image):
            mnt = self.mnt_dir / image
            if mount_source(mnt) is not None:
                # umount writes this filesystem back itself; a host-wide sync also waited for
                # every other stalled mount on the host (another stack's OSD), past any timeout.
                self._bounded(["umount", str(mnt)], f"unmounting image {image!r}", " (a server still running on it?)")
            fuse = self.fuse_dir / image
            if mount_source(fuse) is not None:
                loop = self._loop_of(fuse / image)
                if loop:
                    self._bounded(["losetup", "-d", loop], f"detaching the loop device of image {image!r}")
                    self._until_released(fuse / image)
                self._bounded(["fusermount3", "-u", str(fuse)], f"stopping rbd-fuse of image {image!r}")
            for d in (mnt, fuse):
                with contextlib.suppress(OSError):
                    d.rmdir()

    def free_ranges(self, image: str) -> list[tuple[int, int]]:
        """(offset, length) in bytes of the free blocks of the image's ext4, read from its
        bitmaps with dumpe2fs through rbd-fuse (no loop, no mount); empty for an image
        without a filesystem."""
        with self._locked(image):
            fuse = self.fuse_dir / image
            try:
                file = self._fuse(image)
                res = subprocess.run(["dumpe2fs", str(file)], capture_output=True, text=True, timeout=600)
            finally:
                if mount_source(fuse) is not None:
                    _run(["fusermount3", "-u", str(fuse)], f"stopping rbd-fuse of image {image!r}")
                with contextlib.suppress(OSError):
                    fuse.rmdir()
        if res.returncode != 0:
            if "Bad magic number" in res.stderr or "Couldn't find valid filesystem" in res.stderr:
                return []
            raise StorageError(f"dumpe2fs on image {image!r} failed: {res.stderr.strip().splitlines()[-1:]}")
        return parse_free_blocks(res.stdout)


def parse_free_blocks(dump: str) -> list[tuple[int, int]]:
    """dumpe2fs's per-group `Free blocks: a-b, c` lines as byte ranges."""
    block = next(int(ln.split(":")[1]) for ln in dump.splitlines() if ln.startswith("Block size:"))
    out: list[tuple[int, int]] = []
    for ln in dump.splitlines():
        if not ln.startswith("  Free blocks: "):  # indented: a group's; the header's is a count
            continue
        ln = ln.strip()
        for part in filter(None, (p.strip() for p in ln[len("Free blocks: ") :].split(","))):
            a, _, b = part.partition("-")
            first, last = int(a), int(b or a)
            out.append((first * block, (last - first + 1) * block))
    return sorted(out)


def stalled(what: str, op_timeout: int) -> Stalled:
    return Stalled(
        f"Ceph did not answer within rbd.op_timeout ({op_timeout}s) while {what}: an OSD is stalled or down "
        "(see `ceph -s`); retry once the cluster is healthy"
    )


def unavailable(conf: Path, exc: BaseException) -> Unavailable:
    return Unavailable(
        f"Ceph cluster of {conf} is not reachable ({type(exc).__name__}): "
        "start it with `phoenix stack up --ceph` or check rbd.conf"
    )
