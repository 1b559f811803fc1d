"""The binlog reader (binlog.transactions) in a process of its own. Decoding row events is
pure Python and costs about as much CPU as applying them, so the two run on two cores: the
child reads and decodes, the parent applies what it has received meanwhile.

The child gets its arguments on stdin and sends batches of whole transactions back on
stdout, pickled; a full pipe stops it until the parent has caught up, so memory stays
bounded. Original values cross the pipe only (memory, never a file). The child writes
nothing else: its stderr is discarded, and a failure comes back as a message that holds
no value — IncrementalUnsupported as it was raised, a server error redacted, anything else
by its type only. A parent killed midway takes the child with it (its next write fails).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from phoenix.errors import DatabaseError, IncrementalUnsupported, SourceError
from tasks.sources.binlog import Transaction
from tasks.sources.live import Live, Position

BATCH_ROWS = 1000  # rows per message: a few pipe buffers, and the parent starts early
QUEUED = 64  # messages received and not yet applied: memory stays bounded
_ROOT = Path(__file__).resolve().parents[2]


def transactions(live: Live, start: Position, end: Position, databases: set[str]) -> Iterator[Transaction]:
    """binlog.transactions, read in a child process; the same transactions in the same order."""
    env = {**os.environ, "PYTHONPATH": str(_ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    # A thread empties the pipe while the caller applies: the child does not wait for a
    # statement to end (the apply writes in windows of thousands of rows).
    received: queue.Queue = queue.Queue(maxsize=QUEUED)
    pump = threading.Thread(target=_pump, args=(proc.stdout, received), daemon=True, name="binlog-pipe")
    try:
        pickle.dump((live, start, end, sorted(databases)), proc.stdin)
        proc.stdin.close()
        pump.start()
        while True:
            kind, *body = received.get()
            if kind == "batch":
                yield from body[0]
            elif kind == "end":
                return
            elif kind == "eof":
                raise SourceError(f"the binary-log reader stopped (exit {proc.wait()}) before {end}: "
                                  "run the cycle again")
            elif kind == "unsupported":
                raise IncrementalUnsupported(body[0], position=body[1])
            elif kind == "mysql":
                raise DatabaseError(f"apply: read the source's binary log: {body[0]}")
            else:
                raise SourceError(f"the binary-log reader failed ({body[0]}) before {end}: run the cycle again")
    finally:
        if proc.poll() is None:
            proc.kill()
        while pump.is_alive():  # it ends at the pipe's end; what it still holds is dropped
            with contextlib.suppress(queue.Empty):
                received.get(timeout=0.1)
        proc.wait()
        proc.stdout.close()


def _pump(pipe, received: queue.Queue) -> None:
    while True:
        try:
            message = pickle.load(pipe)
        except (EOFError, OSError, pickle.UnpicklingError):
            message = ("eof",)
        received.put(message)
        if message[0] != "batch":
            return


def _child() -> None:
    import pymysql

    from phoenix.db import describe_mysql
    from tasks.sources.binlog import transactions as read

    out = sys.stdout.buffer
    live, start, end, databases = pickle.load(sys.stdin.buffer)
    try:
        batch: list[Transaction] = []
        rows = 0
        for txn in read(live, start, end, set(databases)):
            batch.append(txn)
            rows += sum(len(c.rows) for c in txn.changes)
            if rows >= BATCH_ROWS:
                pickle.dump(("batch", batch), out, protocol=pickle.HIGHEST_PROTOCOL)
                out.flush()
                batch, rows = [], 0
        if batch:
            pickle.dump(("batch", batch), out, protocol=pickle.HIGHEST_PROTOCOL)
        message: tuple = ("end",)
    except IncrementalUnsupported as exc:
        message = ("unsupported", str(exc), exc.position)
    except pymysql.MySQLError as exc:
        message = ("mysql", describe_mysql(exc))
    except BrokenPipeError:
        return  # the parent is gone
    except Exception as exc:  # noqa: BLE001 — its message may hold a value: the type only
        message = ("failed", type(exc).__name__)
    try:
        pickle.dump(message, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()
    except BrokenPipeError:
        pass


if __name__ == "__main__":
    _child()
