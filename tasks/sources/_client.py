"""The `mariadb` client that reads a whole dump (the restore's one-connection path), and what
its errors say: the line its failing statement began on and the server's message, redacted.

The client stops at the first error and writes `ERROR <code> (<state>) at line <n>: <message>`;
a syntax error's message quotes the statement from where it stopped (`near '…' at line <m>`),
over as many lines as that text has — the whole message is taken and redacted, never its
last line (which is the dump's data).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

from phoenix.db import AdminAccess, client_binary, redact

_ERROR = re.compile(r"^ERROR (\d+) \((\w+)\)(?: at line (\d+))?: (.*)", re.M | re.S)


@dataclass
class ClientFailure:
    line: int | None  # the dump line the failing statement began on, if the client said
    raw: str  # the server's message as it is: to locate the error, never to show
    message: str  # one line, redacted


def failure(stderr: bytes) -> ClientFailure:
    text = stderr.decode(errors="replace")
    m = _ERROR.search(text)
    if not m:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        return ClientFailure(None, "", redact(lines[-1]) if lines else "the client exited with an error")
    raw = m.group(4).rstrip()
    one_line = " ".join(redact(raw).split())
    return ClientFailure(int(m.group(3)) if m.group(3) else None, raw, f"ERROR {m.group(1)} ({m.group(2)}): {one_line}")


def client_error(stderr: bytes) -> str:
    """The client's error as one redacted line (never the value it failed on)."""
    return failure(stderr).message


def client(admin: AdminAccess, database: str | None) -> subprocess.Popen:
    args = [client_binary(), *admin.client_args(), "--binary-mode", "--max-allowed-packet=1G",
            "--init-command=SET SESSION foreign_key_checks=0, unique_checks=0, sql_log_bin=0"]
    if database:
        args.append(database)
    # stderr to a file, not a pipe: a client that reports while we feed its stdin would
    # otherwise block on a full stderr pipe, and we on its stdin — a deadlock.
    errfile = tempfile.TemporaryFile()
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errfile,
                            env={**os.environ, **admin.client_env()})
    proc.errfile = errfile  # type: ignore[attr-defined]
    return proc


def stderr(proc: subprocess.Popen) -> bytes:
    proc.errfile.seek(0)  # type: ignore[attr-defined]
    return proc.errfile.read()  # type: ignore[attr-defined]


def feed(stream: Iterator[bytes], admin: AdminAccess, target: str | None) -> tuple[ClientFailure | None, bool]:
    """One `mariadb` client reads the whole stream: its failure if it failed, and whether it
    was given all of the stream. An error of the stream itself (a corrupt compressed file) is
    raised, the client killed."""
    proc = client(admin, target)
    try:
        assert proc.stdin is not None
        for block in stream:
            proc.stdin.write(block)
        proc.stdin.close()
    except BrokenPipeError:
        proc.wait()
        return failure(stderr(proc)), False
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return (failure(stderr(proc)) if proc.wait() != 0 else None), True
