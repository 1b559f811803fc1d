"""Fault injection for the invariant tests (settings `fault_*`, never set in production):
kill the cycle after a step, skip a clean-up step, plant originals on the stopped breeder."""

from __future__ import annotations

import os

from phoenix.config import get_settings
from phoenix.proc import die_at


def checkpoint(step: str) -> None:
    """PHOENIX_FAULT_KILL_AFTER=<step>: SIGKILL right after that step, exactly like a crashed worker."""
    die_at(step, get_settings().fault_kill_after)


def skipped(step: str) -> bool:
    """PHOENIX_FAULT_SKIP=seal,zero_free leaves out a clean-up step: the gate must find what it leaves."""
    return step in get_settings().fault_skip.split(",")


def plant(storage, name: str, baseline) -> None:
    """PHOENIX_FAULT_PLANT=file|deleted-file writes some of the sampled originals into a file on
    the stopped breeder (and deletes it again), as a careless step would: the forensic gate must
    find them (a deleted one only where freed blocks are part of the image, RBD, and only if
    their zeroing is skipped)."""
    how = get_settings().fault_plant
    if how is None:
        return
    values, _columns = baseline.needles.items()
    path = storage.attach(name) / "planted.txt"
    with open(path, "wb") as f:
        f.write(b"\n".join(values[:50]) * 64)
        f.flush()
        os.fsync(f.fileno())
    if how == "deleted-file":
        path.unlink()
    storage.detach(name)
