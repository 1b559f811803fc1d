"""The error every user-facing failure is raised as.

A `PhoenixError` carries a one-line message that names the thing that is wrong and
what to do about it. The CLI prints exactly that line and exits with `exit_code`;
no traceback reaches the user, and no message may contain a secret.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator


class PhoenixError(Exception):
    """A failure the user can act on; `str(err)` is the one line shown."""

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        # One line only: multi-line messages break the CLI contract and CI log parsing.
        super().__init__(" ".join(str(message).split()))
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(PhoenixError):
    """A configuration key or value is wrong."""

    exit_code = 2


class StackError(PhoenixError):
    """A part of the local stack cannot be installed, started or reached."""


class DatabaseError(PhoenixError):
    """A statement failed on a database server (the message is redacted, see `redact`)."""


# A server message quotes the value a statement failed on ("Duplicate entry 'ada@x.de' for
# key …", "Incorrect string value: '\\xF0…'", "near 'VALUES (1,'Ada',…' at line 1"): every
# quoted literal goes, except the names of keys, columns, tables and the like.
_QUOTED = re.compile(r"(?i)\b(key|column|table|database|constraint|index|schema|trigger|function|procedure|user)"
                     r"\s+'(?:[^'\\]|\\.)*'|'(?:[^'\\]|\\.|'')*'")


_NEAR = re.compile(r"near '.*' at line (\d+)", re.S)  # a syntax error quotes the statement's text


def redact(message: str) -> str:
    """The message with every quoted value replaced by '…' (identifiers kept)."""
    text = _NEAR.sub(r"near '…' at line \1", str(message))
    return _QUOTED.sub(lambda m: m.group(0) if m.group(1) else "'…'", text)


def describe_mysql(exc: BaseException) -> str:
    """`ERROR <code>: <redacted message>` of a pymysql error; never a value."""
    args = getattr(exc, "args", ())
    if len(args) > 1 and isinstance(args[0], int):
        return f"ERROR {args[0]}: {redact(args[1])}"
    return f"{type(exc).__name__}: {redact(str(exc))}"


@contextlib.contextmanager
def database_errors(what: str) -> Iterator[None]:
    """Turn a pymysql error into a one-line DatabaseError without the value it failed on;
    the cause is not chained (its message holds the value)."""
    import pymysql

    try:
        yield
    except pymysql.MySQLError as exc:
        raise DatabaseError(f"{what}: {describe_mysql(exc)}") from None
