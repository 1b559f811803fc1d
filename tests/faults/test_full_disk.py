"""A full filesystem names its cause: the server's first error and the errno's name, not
its last line ("Aborting"), which was all a breed said (issue 17, item 7)."""

from __future__ import annotations

import subprocess

import pytest

from phoenix.errors import ServerFailed
from tasks.runtime.mariadb import MariaDBServer, free_port


@pytest.fixture
def small_fs(tmp_path):
    """A real 140 MB filesystem: room for the system tables, not for the restore's redo log."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=140m", "tmpfs", str(mnt)], check=True)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_server_that_finds_no_space_says_no_space(small_fs):
    server = MariaDBServer(small_fs / "data", small_fs / "run", free_port(), "restore")
    server.initialize()
    server.start()
    with pytest.raises(ServerFailed) as err:
        server.wait_ready(timeout=120)
    server.stop()
    msg = str(err.value)
    assert "No space left on device" in msg and "Aborting" not in msg, msg


def test_an_initialize_that_finds_no_space_says_no_space(small_fs):
    filler = small_fs / "filler"
    subprocess.run(["fallocate", "-l", "100m", str(filler)], check=True)
    with pytest.raises(ServerFailed) as err:
        MariaDBServer(small_fs / "data", small_fs / "run", free_port(), "restore").initialize()
    assert "No space left on device" in str(err.value), str(err.value)
