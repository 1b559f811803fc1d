"""Advisory file locks (flock): the one mechanism every "one at a time" in Phoenix uses —
a breed cycle per host, an operation per environment, a metadata update per image."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def file_lock(path: Path, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on `path` (created if missing). With `wait=False`, yields
    False at once if another process holds it. Released on exit, and by the kernel if
    the holder dies — so a killed cycle never leaves a stale lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run(args: list[str], what: str, error: type[Exception], timeout: float = 120) -> str:
    """Run a command; on failure raise `error` with one line: what failed and the tool's last word."""
    import subprocess

    try:
        res = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise error(f"{what} timed out after {timeout:.0f}s") from None
    except FileNotFoundError:
        raise error(f"{what} failed: {args[0]} is not installed (run `make install`)") from None
    if res.returncode != 0:
        detail = (res.stderr or res.stdout).strip().splitlines()
        raise error(f"{what} failed: {detail[-1] if detail else res.returncode}")
    return res.stdout
