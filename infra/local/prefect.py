"""Stack part: a Prefect server on 127.0.0.1 with SQLite under the state directory."""

from __future__ import annotations

import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from infra.local._proc import pid_alive, read_pid, spawn_daemon, stop_pid
from phoenix.config import Settings
from phoenix.errors import StackError
from phoenix.proc import daemon_env

_START_TIMEOUT = 90.0


def _dir(settings: Settings) -> Path:
    return settings.home_dir / "prefect"


def _pid_file(settings: Settings) -> Path:
    return _dir(settings) / "server.pid"


def client_env(settings: Settings) -> dict[str, str]:
    """Environment for processes that talk to this server (flows, workers, the CI client)."""
    return {
        "PREFECT_API_URL": settings.prefect_url,
        "PREFECT_HOME": str(_dir(settings)),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
        "PREFECT_LOCAL_STORAGE_PATH": str(_dir(settings) / "results"),
    }


def server_env(settings: Settings) -> dict[str, str]:
    """The server's environment: the minimal one, the operator's PREFECT_* server settings
    and ours — never PHOENIX_ANON_KEY or another secret (it runs no flow), no telemetry."""
    home = _dir(settings)
    theirs = {k: v for k, v in os.environ.items() if k.startswith("PREFECT_") and k not in _NOT_FOR_SERVER}
    env = daemon_env({**theirs, **client_env(settings),
                      "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home / 'prefect.db'}",
                      "PREFECT_UI_API_URL": settings.prefect_url})
    env.pop("PREFECT_API_URL")  # the server itself must not point at an API
    return env


# A client's credentials and target: nothing the server needs.
_NOT_FOR_SERVER = {"PREFECT_API_KEY", "PREFECT_API_AUTH_STRING", "PREFECT_API_URL"}


def healthy(settings: Settings, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{settings.prefect_url}/health", timeout=timeout) as resp:
            return resp.status == 200 and resp.read().strip() == b"true"
    except (urllib.error.URLError, OSError, ValueError):
        return False


def status(settings: Settings) -> dict | None:
    pid = read_pid(_pid_file(settings))
    if not pid_alive(pid):
        return None
    return {"url": settings.prefect_url, "ui": settings.prefect_url.removesuffix("/api"),
            "pid": pid, "healthy": healthy(settings), "home": str(_dir(settings))}


def up(settings: Settings) -> dict:
    current = status(settings)
    if current and current["healthy"]:
        return current
    if current:  # alive but not answering: restart it
        down(settings)
    if healthy(settings):
        raise StackError(f"port {settings.prefect.port} already serves another Prefect server: "
                         "stop it or set PHOENIX_PREFECT__PORT")
    home = _dir(settings)
    home.mkdir(parents=True, exist_ok=True)
    prefect_bin = shutil.which("prefect", path=str(Path(sys.executable).parent)) or "prefect"
    env = server_env(settings)
    spawn_daemon([prefect_bin, "server", "start", "--host", settings.prefect.host,
                  "--port", str(settings.prefect.port)],
                 log=home / "server.log", pid_file=_pid_file(settings), env=env, cwd=home)
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if healthy(settings):
            _free_orphaned_slots(settings)
            return status(settings) or {}
        if not pid_alive(read_pid(_pid_file(settings))):
            break
        time.sleep(0.5)
    down(settings)
    raise StackError(f"Prefect server did not become healthy on {settings.prefect_url}; "
                     f"see {home / 'server.log'}")


def _free_orphaned_slots(settings: Settings) -> None:
    # Prefect fixes its settings when first imported: unless something else is configured,
    # this process's flows must then talk to this server, not start a temporary one (the
    # breed benchmark's and the demo's did, ~3 s each, because this import came first).
    for key, value in client_env(settings).items():
        os.environ.setdefault(key, value)
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from tasks.cycle_slot import free_orphaned_slots

    with temporary_settings(updates={PREFECT_API_URL: settings.prefect_url}):
        free_orphaned_slots()


def down(settings: Settings) -> None:
    stop_pid(read_pid(_pid_file(settings)), timeout=15)
    _pid_file(settings).unlink(missing_ok=True)
