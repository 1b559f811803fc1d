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
