"""A spawn killed (SIGKILL) between its steps leaves a clone that belongs to nobody: the
reaper removes it, and a re-spawn of the name gives a working environment — it returned
exit 0 with an empty user and password before (issue 17, item 1)."""

from __future__ import annotations

import json

import pymysql
import pytest

from tests.conftest import run_phoenix


def _spawn(name: str, **env):
    return run_phoenix("spawn", name, "--json", env=env, timeout=300)


def _query(info: dict) -> int:
    conn = pymysql.connect(host=info["host"], port=info["port"], user=info["user"], password=info["password"],
                           database=info["database"], connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW TABLES")  # the golden's tables, whichever dump it was bred from
            return len(cur.fetchall())
    finally:
        conn.close()


@pytest.mark.parametrize("point", ["spawn:clone", "spawn:meta", "spawn:start"])
def test_a_spawn_killed_midway_is_reaped_or_respawned_whole(local_golden, settings, unique, point):
    from phoenix.names import env_id, image_name
    from tasks.storage.local import LocalStorage

    name = f"{unique}-half"
    image = image_name(env_id(name))
    assert run_phoenix("teardown", name).returncode == 0  # from an earlier run of the suite
    killed = _spawn(name, PHOENIX_FAULT_KILL_AFTER=point)
    assert killed.returncode == -9, killed.stderr[-1500:]
    with LocalStorage(settings.btrfs_mount) as st:
        assert st.exists(image)
    reaped = run_phoenix("reap", timeout=300)
    assert reaped.returncode == 0, reaped.stderr[-1500:]
    with LocalStorage(settings.btrfs_mount) as st:
        # a half clone (before its metadata and its account) is gone; a complete one stays
        assert st.exists(image) == (point == "spawn:start")
    again = _spawn(name)
    assert again.returncode == 0, again.stderr[-1500:]
    info = json.loads(again.stdout.strip().splitlines()[-1])
    assert info["user"] and info["password"] and _query(info) > 0
    assert run_phoenix("teardown", name).returncode == 0


def test_a_respawn_over_a_half_clone_that_was_not_reaped_works(local_golden, settings, unique):
    name = f"{unique}-half2"
    assert run_phoenix("teardown", name).returncode == 0
    assert _spawn(name, PHOENIX_FAULT_KILL_AFTER="spawn:clone").returncode == -9
    again = _spawn(name)
    assert again.returncode == 0, again.stderr[-1500:]
    info = json.loads(again.stdout.strip().splitlines()[-1])
    assert info["user"] and info["password"] and _query(info) > 0
    ls = json.loads(run_phoenix("ls", "--json").stdout)
    assert [e["name"] for e in ls["environments"] if e["name"] == name] == [name]
    assert run_phoenix("teardown", name).returncode == 0
