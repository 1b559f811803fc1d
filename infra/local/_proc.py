"""Daemons of the local stack: start detached with a pid file, find again, stop by pid.

No systemd runs on these machines, so each stack part starts its daemons in their own
session (they outlive `phoenix stack up`) and keeps their pids under the state directory.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from phoenix.proc import daemon_env, pid_alive

__all__ = ["pid_alive", "read_pid", "spawn_daemon", "stop_pid"]


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def spawn_daemon(args: list[str], *, log: Path, pid_file: Path, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> int:
    """Start `args` detached (own session, stdin closed, output appended to `log`), with
    `env` or else only `phoenix.proc.daemon_env()`: never the caller's secrets."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(os.devnull, "rb") as devnull, open(log, "ab") as out:
        proc = subprocess.Popen(args, stdin=devnull, stdout=out, stderr=subprocess.STDOUT,
                                env=daemon_env() if env is None else env, cwd=cwd, start_new_session=True)
    pid_file.write_text(f"{proc.pid}\n")
    return proc.pid


def stop_pid(pid: int | None, *, timeout: float = 15.0, group: bool = True) -> None:
    """SIGTERM (the whole process group if `group`), then SIGKILL after `timeout`."""
    if not pid_alive(pid):
        return
    assert pid is not None
    sig_target = (lambda s: os.killpg(pid, s)) if group else (lambda s: os.kill(pid, s))
    try:
        sig_target(signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.1)
    if pid_alive(pid):
        try:
            sig_target(signal.SIGKILL)
        except ProcessLookupError:
            pass
        for _ in range(50):
            _reap(pid)
            if not pid_alive(pid):
                break
            time.sleep(0.1)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
