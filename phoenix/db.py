"""Reaching a MariaDB/MySQL server, for every layer: how (AdminAccess), a session
(connect), names inside SQL (quote), and errors without the values they quote (redact)."""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pymysql

from phoenix.errors import DatabaseError


@dataclass(frozen=True)
class AdminAccess:
    """How Phoenix itself reaches a server with full rights (restore, anonymize)."""

    host: str | None
    port: int | None
    user: str
    password: str | None = field(default=None, repr=False)
    socket: Path | None = None

    def client_args(self) -> list[str]:
        """Arguments for the `mariadb`/`mysql` client. A password travels in the
        MYSQL_PWD environment variable (see `client_env`), never on argv."""
        if self.socket is not None:
            return [f"--socket={self.socket}", f"--user={self.user}"]
        return [f"--host={self.host}", f"--port={self.port}", f"--user={self.user}"]

    def client_env(self) -> dict[str, str]:
        return {"MYSQL_PWD": self.password} if self.password else {}

    def pymysql_kwargs(self) -> dict[str, object]:
        kw: dict[str, object] = {"user": self.user}
        if self.socket is not None:
            kw["unix_socket"] = str(self.socket)
        else:
            kw.update(host=self.host, port=self.port)
        if self.password:
            kw["password"] = self.password
        return kw


def client_binary() -> str:
    """The `mariadb` (or `mysql`) command-line client."""
    for name in ("mariadb", "mysql"):
        path = shutil.which(name)
        if path:
            return path
    raise DatabaseError("no mariadb/mysql client found: run `make install` (installs Debian's mariadb-client)")


def connect(admin: AdminAccess, database: str | None) -> pymysql.Connection:
    """An autocommit utf8mb4 session with long timeouts (a table rewrite can take an hour)."""
    return pymysql.connect(
        **admin.pymysql_kwargs(),
        database=database,
        autocommit=True,
        charset="utf8mb4",
        read_timeout=3600,
        write_timeout=3600,
    )


def quote(name: object) -> str:
    """An identifier inside SQL: backquoted, backquotes doubled."""
    return "`" + str(name).replace("`", "``") + "`"


# A server message quotes the value a statement failed on ("Duplicate entry 'ada@x.de' for
# key …", "Incorrect string value: '\\xF0…'", "near 'VALUES (1,'Ada',…' at line 1"): every
# quoted literal goes, except the names of keys, columns, tables and the like.
_QUOTED = re.compile(
    r"(?i)\b(key|column|table|database|constraint|index|schema|trigger|function|procedure|user)"
    r"\s+'(?:[^'\\]|\\.)*'|'(?:[^'\\]|\\.|'')*'"
)
_NEAR = re.compile(r"near '.*' at line (\d+)", re.S)  # a syntax error quotes the statement's text


def redact(message: str) -> str:
    """The message with every quoted value replaced by '…' (identifiers kept)."""
    text = _NEAR.sub(r"near '…' at line \1", str(message))
    return _QUOTED.sub(lambda m: m.group(0) if m.group(1) else "'…'", text)


def describe_mysql(exc: BaseException) -> str:
    """`ERROR <code>: <redacted message>` of a pymysql error; never a value."""
    args: tuple = tuple(getattr(exc, "args", ()))
    if len(args) > 1 and isinstance(args[0], int):
        return f"ERROR {args[0]}: {redact(args[1])}"
    return f"{type(exc).__name__}: {redact(str(exc))}"


@contextlib.contextmanager
def database_errors(what: str) -> Iterator[None]:
    """Turn a pymysql error into a one-line DatabaseError without the value it failed on;
    the cause is not chained (its message holds the value)."""
    try:
        yield
    except pymysql.MySQLError as exc:
        raise DatabaseError(f"{what}: {describe_mysql(exc)}") from None
