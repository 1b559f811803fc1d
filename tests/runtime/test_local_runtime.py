"""The local runtime against real mariadbd processes on real btrfs and RBD images."""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import time

import pymysql
import pytest

from tasks.runtime.base import Credentials, ServerFailed
from tasks.runtime.local import LocalRuntime
from tasks.runtime.mariadb import pid_alive


@pytest.fixture
def runtime(settings, storage):
    rt = LocalRuntime(settings, storage)
    yield rt
    for ep in rt.list():
        rt.remove(ep.name)


@pytest.fixture
def golden(storage, runtime, unique):
    """A tiny golden: a breeder with one table, shut down slowly, snapshotted and protected."""
    name = f"{unique}-gold"
    storage.create(name, 1 << 30)
    runtime.start(name, name, profile="restore")
    runtime.wait_ready(name)
    conn = pymysql.connect(**runtime.admin(name).pymysql_kwargs())
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE app")
        cur.execute("CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20))")
        cur.execute("INSERT INTO app.t VALUES (1, 'one'), (2, 'two')")
    conn.commit()
    conn.close()
    runtime.remove(name)
    storage.snapshot(name, "base")
    storage.protect(name, "base")
    yield name
    for child in storage.children(name, "base"):
        runtime.remove(child)
        storage.remove(child)
    storage.unprotect(name, "base")
    storage.remove_snapshot(name, "base")
    storage.remove(name)


def _rows(ep, creds):
    conn = pymysql.connect(host=ep.host, port=ep.port, user=creds.user, password=creds.password,
                           database=creds.database)
    with conn.cursor() as cur:
        cur.execute("SELECT id, v FROM t ORDER BY id")
        rows = cur.fetchall()
    conn.close()
    return rows


def test_environment_serves_the_goldens_data_with_its_own_account(storage, runtime, golden, unique):
    env = f"{unique}-e1"
    storage.clone(golden, "base", env)
    creds = Credentials.generate("app")
    runtime.start(env, env, profile="environment", credentials=creds, labels={"phoenix.io/env": "e1"})
    ep = runtime.wait_ready(env)
    assert ep.state == "running" and ep.labels == {"phoenix.io/env": "e1"}
    assert _rows(ep, creds) == ((1, "one"), (2, "two"))
    with pytest.raises(pymysql.MySQLError):
        pymysql.connect(host=ep.host, port=ep.port, user=creds.user, password="wrong", database="app")
    # secrets are private files
    secret_files = [runtime.root / env / "credentials.json", runtime.root / env / "init.sql"]
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in secret_files)


def test_start_is_idempotent_and_state_survives_a_new_runtime_object(settings, storage, runtime, golden, unique):
    env = f"{unique}-e1"
    storage.clone(golden, "base", env)
    creds = Credentials.generate("app")
    first = runtime.start(env, env, profile="environment", credentials=creds)
    runtime.wait_ready(env)
    again = runtime.start(env, env, profile="environment")
    assert again.pid == runtime.get(env).pid and again.port == first.port
    reborn = LocalRuntime(settings, storage)  # as after an orchestrator restart
    assert reborn.get(env).state == "running"
    assert reborn.credentials(env).password == creds.password


def test_a_killed_server_is_reported_dead(storage, runtime, golden, unique):
    env = f"{unique}-e1"
    storage.clone(golden, "base", env)
    runtime.start(env, env, profile="environment", credentials=Credentials.generate("app"))
    ep = runtime.wait_ready(env)
    os.kill(ep.pid, signal.SIGKILL)
    for _ in range(100):
        if not pid_alive(ep.pid):
            break
        time.sleep(0.05)
    assert runtime.get(env).state == "dead"
    with pytest.raises(ServerFailed):
        runtime.wait_ready(env, timeout=5)


def test_restart_keeps_credentials_and_data_written(storage, runtime, golden, unique):
    env = f"{unique}-e1"
    storage.clone(golden, "base", env)
    creds = Credentials.generate("app")
    runtime.start(env, env, profile="environment", credentials=creds)
    ep = runtime.wait_ready(env)
    conn = pymysql.connect(host=ep.host, port=ep.port, user=creds.user, password=creds.password, database="app")
    with conn.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (3, 'three')")
    conn.commit()
    conn.close()
    runtime.stop(env)
    assert runtime.get(env).state == "stopped"
    runtime.start(env, env, profile="environment")
    ep = runtime.wait_ready(env)
    assert _rows(ep, creds)[-1] == (3, "three")


def test_ten_concurrent_starts_get_distinct_ports(storage, runtime, golden, unique):
    names = [f"{unique}-c{i}" for i in range(10)]
    for n in names:
        storage.clone(golden, "base", n)

    def up(n):
        runtime.start(n, n, profile="environment", credentials=Credentials.generate("app"))
        return runtime.wait_ready(n)

    with cf.ThreadPoolExecutor(max_workers=10) as pool:
        eps = list(pool.map(up, names))
    assert len({ep.port for ep in eps}) == 10
    assert all(_rows(ep, runtime.credentials(ep.name))[0] == (1, "one") for ep in eps)


def test_remove_is_idempotent(storage, runtime, golden, unique):
    env = f"{unique}-e1"
    storage.clone(golden, "base", env)
    runtime.start(env, env, profile="environment", credentials=Credentials.generate("app"))
    ep = runtime.wait_ready(env)
    runtime.remove(env)
    runtime.remove(env)
    assert runtime.get(env) is None and not pid_alive(ep.pid)


def test_a_port_taken_by_another_process_moves_the_server_to_a_free_one(storage, runtime, golden, unique, monkeypatch):
    import socket

    env = f"{unique}-e1"
    storage.clone(golden, "base", env)
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    busy = squatter.getsockname()[1]
    real_pick = LocalRuntime._pick_port
    picks = []

    def pick(self, name):  # the race: a port free when picked, taken before the bind
        picks.append(name)
        return busy if len(picks) == 1 else real_pick(self, name)

    monkeypatch.setattr(LocalRuntime, "_pick_port", pick)
    creds = Credentials.generate("app")
    runtime.start(env, env, profile="environment", credentials=creds)
    ep = runtime.wait_ready(env)
    squatter.close()
    assert ep.port != busy and len(picks) == 2
    assert _rows(ep, creds)[0] == (1, "one")


def test_a_server_rewriting_its_pid_file_still_counts_as_running(storage, runtime, golden, unique):
    # mariadbd truncates its pid file, then writes it, right after "Server socket created":
    # a wait that read it in between took a starting server for a dead one (seen once in CI).
    env = f"{unique}-e1"
    storage.clone(golden, "base", env)
    runtime.start(env, env, profile="environment", credentials=Credentials.generate("app"))
    ep = runtime.wait_ready(env)
    (runtime.root / env / "mysqld.pid").write_text("")
    assert runtime.get(env).state == "running"
    assert runtime.wait_ready(env).pid == ep.pid


def test_ports_lie_below_the_kernels_ephemeral_range(storage, runtime, golden, unique):
    # A port from the ephemeral range can become the local end of any outgoing connection
    # between the pick and the server's bind, or while an environment is stopped.
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    env = f"{unique}-e1"
    storage.clone(golden, "base", env)
    runtime.start(env, env, profile="environment", credentials=Credentials.generate("app"))
    assert runtime.wait_ready(env).port < low
