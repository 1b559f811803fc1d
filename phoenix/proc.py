"""Processes and files, for every layer: run a tool keeping its last word, the mount
table, private files, whether a pid lives. Written once here; used by storage, runtime
and the local stack alike."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

# All a daemon (mariadbd, Ceph, etcd, the Prefect server, rbd-fuse) gets of our environment:
# anything else — PHOENIX_ANON_KEY, PHOENIX_SOURCE_PASSWORD, tokens — would sit readable in
# its /proc/<pid>/environ for as long as it runs.
DAEMON_ENV_KEYS = ("PATH", "LANG", "LC_ALL", "TZ", "HOME")
_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def daemon_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A minimal environment for a long-running child: DAEMON_ENV_KEYS, then `extra`."""
    env = {k: os.environ[k] for k in DAEMON_ENV_KEYS if k in os.environ}
    env.setdefault("PATH", _DEFAULT_PATH)
    return {**env, **(extra or {})}


def run(
    args: list[str],
    what: str,
    error: type[Exception],
    timeout: float = 120,
    env: dict[str, str] | None = None,
    on_timeout: Callable[[], Exception] | None = None,
) -> str:
    """Run a command; on failure raise `error` with one line: what failed and the tool's last word;
    after `timeout` seconds, `on_timeout()` if given (a stall has its own diagnosis)."""
    try:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    except FileNotFoundError:
        raise error(f"{what} failed: {args[0]} is not installed (run `make install`)") from None
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        # Not subprocess.run: it waits for the killed child, and one stuck in the kernel on a
        # stalled OSD (an umount, a loop detach) never ends — that wait is left behind here.
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.communicate(timeout=5)
        raise (on_timeout() if on_timeout else error(f"{what} timed out after {timeout:.0f}s")) from None
    if proc.returncode != 0:
        detail = (err or out).strip().splitlines()
        raise error(f"{what} failed: {detail[-1] if detail else proc.returncode}")
    return out


class Mount(NamedTuple):
    device: str
    path: str
    fstype: str


def mounts() -> list[Mount]:
    """The kernel's mount table (paths unescaped: a space is `\\040` there)."""
    with open("/proc/self/mounts") as f:
        return [Mount(dev, mnt.replace("\\040", " "), fstype) for dev, mnt, fstype, *_ in map(str.split, f)]


def mounted_at(path: Path | str) -> Mount | None:
    target = str(path)
    return next((m for m in mounts() if m.path == target), None)


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (mode 0600 from its creation on)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def pid_alive(pid: int | None) -> bool:
    """Whether `pid` runs (a zombie counts as dead)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def pid_started(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot, /proc/<pid>/stat field 22); None if it is
    gone. A pid and its start time name one process: a recycled pid has another start."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(") ", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def pid_namespace() -> str:
    """This kernel boot and pid namespace: a pid means the same process only within them."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
        ns = os.readlink("/proc/self/ns/pid").removeprefix("pid:[").removesuffix("]")
    except OSError:
        return ""
    return f"{boot}.{ns}"


def die_at(point: str, configured: str | None) -> None:
    """Fault injection for the crash tests (`fault_kill_after`, never set in production):
    SIGKILL this process right at `point` when it is the configured one — a crashed worker."""
    if configured == point:
        os.kill(os.getpid(), signal.SIGKILL)
