"""The incremental breeder's read-ahead (tasks/cycle/_read_ahead.py) on a real filesystem:
the files come into the page cache, and nothing stays open after the step."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tasks.cycle._read_ahead import read_ahead


class _Attached:
    """The one verb read_ahead uses of the storage contract."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def attached(self, image: str) -> Path | None:
        return self.root


def _cached_bytes(path: Path) -> int:
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(path)],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


@pytest.fixture
def datadir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("breeder", numbered=True)
    (root / "shop").mkdir()
    for name, size in (("shop/orders.ibd", 24 << 20), ("ibdata1", 4 << 20), ("ib_logfile0", 16 << 20)):
        with open(root / name, "wb") as f:
            f.write(os.urandom(size))
            f.flush()
            os.fsync(f.fileno())
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)  # out of memory, as a fresh clone's
    return root


def test_the_files_come_into_memory_while_the_step_runs(datadir):
    files = [datadir / "shop/orders.ibd", datadir / "ibdata1"]
    before = [_cached_bytes(f) for f in files]
    assert before[0] < (24 << 20) // 2  # the test means something only if they were not cached
    with read_ahead(_Attached(datadir), "breeder"):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_cached_bytes(f) < f.stat().st_size for f in files):
            time.sleep(0.05)
        assert [_cached_bytes(f) for f in files] == [f.stat().st_size for f in files]
        # The redo log, written and never read back, is not read: 16 MB it would ask for before ibdata1.
        assert _cached_bytes(datadir / "ib_logfile0") < (16 << 20) // 2


def test_no_file_stays_open_and_no_thread_after_the_step(datadir):
    with read_ahead(_Attached(datadir), "breeder"):
        pass
    held = {os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd") if _link(fd)}
    assert not any(h.startswith(str(datadir)) for h in held)
    import threading

    assert not [t for t in threading.enumerate() if t.name == "read-ahead"]


def test_an_image_not_attached_here_is_left_alone():
    with read_ahead(_Attached(None), "breeder"):
        pass


def _link(fd: str) -> bool:
    try:
        os.readlink(f"/proc/self/fd/{fd}")
        return True
    except OSError:
        return False
