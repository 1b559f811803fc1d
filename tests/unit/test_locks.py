"""file_lock removes its file when done (issue 17: three lock files per environment name
ever used piled up) and still excludes: a waiter that got the lock of a removed file retries."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from phoenix.locks import file_lock


def test_the_lock_file_is_gone_after_use(tmp_path):
    lock = tmp_path / "locks" / "env-x.lock"
    with file_lock(lock) as held:
        assert held and lock.exists()
        with file_lock(lock, wait=False) as again:
            assert again is False  # another holder is refused, not let in
    assert not lock.exists()


def _bump(lock: str, counter: str, n: int) -> None:
    for _ in range(n):
        with file_lock(Path(lock)):
            c = Path(counter)
            value = int(c.read_text() or 0)
            c.write_text(str(value + 1))  # a lost update shows in the total


def test_removal_never_lets_two_holders_in(tmp_path):
    lock, counter = tmp_path / "l.lock", tmp_path / "count"
    counter.write_text("0")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_bump, args=(str(lock), str(counter), 200)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 6
    assert int(counter.read_text()) == 1200 and not lock.exists()
