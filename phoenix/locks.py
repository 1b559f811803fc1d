"""Advisory file locks (flock): the one mechanism every "one at a time" in Phoenix uses —
a breed cycle per host, an operation per environment, a metadata update per image."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def file_lock(path: Path, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on `path` (created if missing). With `wait=False`, yields
    False at once if another process holds it. Released on exit, and by the kernel if
    the holder dies — so a killed cycle never leaves a stale lock.

    The holder removes the file when it is done (one per environment name ever used piled
    up otherwise). A waiter may then hold the lock of a removed file: it checks that its
    file is still the one at `path` and starts again if not."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        with open(path, "a") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                current = os.stat(path)
            except FileNotFoundError:
                continue  # removed by the holder before us: lock the new one
            if not os.path.samestat(current, os.fstat(fh.fileno())):
                continue
            try:
                yield True
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)  # while still holding it: nobody can hold this file after us
                fcntl.flock(fh, fcntl.LOCK_UN)
            return
