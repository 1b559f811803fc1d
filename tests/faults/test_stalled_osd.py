"""A SIGSTOPped OSD: a teardown fails within rbd.op_timeout with one clear line, and works
after SIGCONT (issue 17, item 3). Before: librbd waited its hard-coded 60 s and said "Ceph
connection lost", an unmount 120 s; the real local Ceph cluster, a short timeout here."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator

import pytest

from tests.conftest import run_phoenix

OP_TIMEOUT = 4


@contextlib.contextmanager
def _osd_stopped(settings) -> Iterator[None]:
    from infra.local import ceph
    from infra.local._proc import read_pid

    pid = read_pid(ceph._pid(settings, "osd"))
    assert pid, "the local Ceph stack's OSD is not running"
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.fixture
def attached_env(settings, ceph_cluster, unique):
    """An environment's image on RBD, attached, with data written through its filesystem
    (the local runtime finds no server: the teardown goes straight to the storage)."""
    from phoenix.names import env_id, image_name
    from tasks.schema import Kind, Meta
    from tasks.storage import open_storage

    name = f"{unique}-stall"
    image = image_name(env_id(name))
    with open_storage(settings.model_copy(update={"storage": "rbd"})) as st:
        if st.exists(image):
            st.detach(image)
            st.remove(image)
        st.create(image, 256 << 20)
        st.set_meta(image, Meta.KIND, Kind.ENV)
        st.set_meta(image, Meta.ENV, name)
        (st.attach(image) / "dirty").write_bytes(os.urandom(4 << 20))  # unwritten back: an unmount must
        yield name, image, st
        if st.exists(image):
            st.detach(image)
            st.remove(image)


def _one_line(stderr: str) -> str:
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("phoenix: error: "), stderr[-1500:]
    return last


def test_a_teardown_on_a_stalled_osd_fails_within_the_timeout_and_recovers(settings, attached_env):
    name, image, st = attached_env
    with _osd_stopped(settings):
        t0 = time.monotonic()
        res = run_phoenix("teardown", name, backend="rbd", env={"PHOENIX_RBD__OP_TIMEOUT": str(OP_TIMEOUT)},
                          timeout=300)
        elapsed = time.monotonic() - t0
    assert res.returncode == 1, res.stderr[-1500:]
    line = _one_line(res.stderr)
    assert f"Ceph did not answer within rbd.op_timeout ({OP_TIMEOUT}s)" in line and "OSD is stalled" in line
    assert elapsed < 45, elapsed  # the CLI's own start (seconds on a busy host) + one op_timeout; was 60 s+
    again = run_phoenix("teardown", name, backend="rbd", timeout=300)
    assert again.returncode == 0, again.stderr[-1500:]
    assert f"removed {name}" in again.stderr and not st.exists(image)


def test_an_unmount_on_a_stalled_osd_is_bounded_too(settings, attached_env):
    """The detach: umount waits on rbd-fuse, which has no timeout of its own."""
    from tasks.storage import Stalled, open_storage

    _name, image, st = attached_env
    short = settings.model_copy(update={"storage": "rbd", "rbd": settings.rbd.model_copy(
        update={"op_timeout": OP_TIMEOUT})})
    with open_storage(short) as stalling, _osd_stopped(settings):
        t0 = time.monotonic()
        with pytest.raises(Stalled, match=rf"within rbd.op_timeout \({OP_TIMEOUT}s\) while unmounting image"):
            stalling.detach(image)
        elapsed = time.monotonic() - t0
    assert elapsed < OP_TIMEOUT + 10, elapsed  # the timeout, and the bounded wait for the killed umount
    st.detach(image)  # the cluster answers again: it goes through
    st.remove(image)
    assert st.attached(image) is None and not st.exists(image)
