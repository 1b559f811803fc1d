"""A live source server (`mysql://user@host[:port]/db`): how to reach it, and where its
binary log stands.

A full cycle from such a source records the position of its copy (the dump's own
`CHANGE MASTER TO` comment, taken inside its consistent snapshot) in the golden; an
incremental cycle reads the binary log from there (binlog.py). The password comes from
`PHOENIX_SOURCE_PASSWORD`, never from the URL or a flow parameter.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import urlparse

import pymysql

from phoenix.config import get_settings
from phoenix.errors import RestoreError

LIVE_SCHEMES = ("mysql://", "mariadb://")
# What an incremental cycle needs of the source's binary log, and why: row images with
# every column (a key's and a rule's inputs), named (the table map carries the names).
NEEDED = {"log_bin": "ON", "binlog_format": "ROW", "binlog_row_image": "FULL", "binlog_row_metadata": "FULL"}
_CHANGE_MASTER = re.compile(rb"CHANGE MASTER TO MASTER_LOG_FILE='([^']+)', MASTER_LOG_POS=(\d+)")


def is_live(source: str) -> bool:
    return source.startswith(LIVE_SCHEMES)


@dataclass(frozen=True)
class Live:
    """Where the source server is; `password` is never printed (repr=False)."""

    host: str
    port: int
    user: str
    database: str
    password: str | None = None

    def __repr__(self) -> str:
        return f"Live({self.user}@{self.host}:{self.port}/{self.database})"

    def connect(self, database: str | None = None) -> pymysql.Connection:
        return pymysql.connect(host=self.host, port=self.port, user=self.user, password=self.password or "",
                               database=database, connect_timeout=10, charset="utf8mb4")

    def settings(self) -> dict:
        """pymysql keyword arguments, for the binlog reader."""
        return {"host": self.host, "port": self.port, "user": self.user, "passwd": self.password or "",
                "charset": "utf8mb4"}


def describe(url: str) -> str:
    """The URL as it may be logged: no password, ever."""
    u = urlparse(url)
    return f"{u.scheme}://{u.username or ''}@{u.hostname}{':' + str(u.port) if u.port else ''}{u.path}"


def parse(url: str) -> Live:
    u = urlparse(url)
    shown = describe(url)
    if u.password:
        raise RestoreError(f"source {shown}: put the password in PHOENIX_SOURCE_PASSWORD, not in the URL")
    database = u.path.lstrip("/")
    if not database or not u.hostname:
        raise RestoreError(f"source {shown}: expected mysql://user@host[:port]/database")
    password = get_settings().source_password
    return Live(u.hostname, u.port or 3306, u.username or "root", database,
                password.get_secret_value() if password is not None else None)


@dataclass(frozen=True, order=True)
class Position:
    """A place in the source's binary log: file and byte offset (ordered by both)."""

    index: int  # the file's sequence number: what orders two files
    file: str
    pos: int

    @classmethod
    def at(cls, file: str, pos: int) -> Position:
        return cls(int(file.rsplit(".", 1)[-1]), file, int(pos))

    def __str__(self) -> str:
        return f"{self.file}:{self.pos}"

    def to_json(self) -> str:
        return json.dumps({"file": self.file, "pos": self.pos})

    @classmethod
    def from_json(cls, text: str | None) -> Position | None:
        if not text:
            return None
        d = json.loads(text)
        return cls.at(d["file"], d["pos"])


def position_in_dump(head: bytes) -> Position | None:
    """The position a `--master-data` dump was taken at (its header's comment)."""
    m = _CHANGE_MASTER.search(head)
    return Position.at(m.group(1).decode(), int(m.group(2))) if m else None


def not_ready(conn: pymysql.Connection) -> str | None:
    """Why this server's binary log cannot feed an incremental cycle (None: it can)."""
    with conn.cursor() as cur:
        cur.execute("SELECT @@log_bin, @@binlog_format, @@binlog_row_image, @@binlog_row_metadata")
        got = dict(zip(NEEDED, [str(v).upper() if v is not None else "" for v in cur.fetchone()], strict=True))
    got["log_bin"] = "ON" if got["log_bin"] in ("1", "ON") else "OFF"
    wrong = [f"{k}={got[k]} (needs {v})" for k, v in NEEDED.items() if got[k] != v]
    return "the source's binary log does not record full rows: " + ", ".join(wrong) if wrong else None


def current(conn: pymysql.Connection) -> Position:
    """Where the source's binary log ends now."""
    with conn.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")
        row = cur.fetchone()
    if not row:
        raise RestoreError("the source has no binary log (SHOW MASTER STATUS is empty): start it with --log-bin")
    return Position.at(row[0], row[1])


def reaches(conn: pymysql.Connection, position: Position) -> bool:
    """Whether the source still holds its binary logs from `position` on (not purged)."""
    with conn.cursor() as cur:
        cur.execute("SHOW BINARY LOGS")
        files = {row[0]: int(row[1]) for row in cur.fetchall()}
    return position.file in files and position.pos <= files[position.file]
