"""The error every user-facing failure is raised as.

A `PhoenixError` carries a one-line message that names the thing that is wrong and
what to do about it. The CLI prints exactly that line and exits with `exit_code`;
no traceback reaches the user, and no message may contain a secret.
"""

from __future__ import annotations


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
