"""Backends that cannot be reached fail fast with one actionable line."""

from __future__ import annotations

import time

import pytest

from infra.local.ceph import _conf_text
from phoenix.config import load_settings
from tasks.runtime.mariadb import free_port
from tasks.storage import Unavailable
from tasks.storage.local import LocalStorage
from tasks.storage.rbd import RbdStorage


def test_ceph_not_reachable_is_a_one_line_error_within_ten_seconds(tmp_path):
    dead = load_settings(home=tmp_path, rbd={"mon_port": free_port(), "connect_timeout": 3})
    conf = tmp_path / "ceph.conf"
    conf.write_text(_conf_text(dead, "00000000-0000-0000-0000-000000000000"))
    t0 = time.monotonic()
    with pytest.raises(Unavailable) as err:
        RbdStorage(conf=conf, pool="phoenix", connect_timeout=3)
    assert time.monotonic() - t0 < 10
    msg = str(err.value)
    assert "\n" not in msg and str(conf) in msg and "phoenix stack up --ceph" in msg


def test_btrfs_pool_not_mounted_names_stack_up(tmp_path):
    st = LocalStorage(tmp_path / "not-mounted")
    with pytest.raises(Unavailable, match="is not mounted: run `phoenix stack up`"):
        st.list()
    with pytest.raises(Unavailable):
        st.create("x", 1 << 20)
