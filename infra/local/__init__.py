"""The local stack: the real parts Phoenix runs on, started and stopped by their pids (see stack.py)."""

from infra.local._proc import read_pid, spawn_daemon, stop_pid
from phoenix.proc import pid_alive

__all__ = ["pid_alive", "read_pid", "spawn_daemon", "stop_pid"]
