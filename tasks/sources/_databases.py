"""The databases a dump names itself (`mysqldump --databases a b`, `--all-databases`).

Such a dump carries `CREATE DATABASE` and `USE` statements; its rows go where they say,
not into the configured `database`. The restore keeps the names in the order the dump
first uses them. The system schemas are not restored: `mysql` would replace the breeder's
own accounts (and bring production's password hashes), the others are the server's.
"""

from __future__ import annotations

import functools
import itertools
import os
import re
from collections.abc import Iterator

SYSTEM = ("mysql", "sys", "performance_schema", "information_schema")
_VERSIONED = re.compile(rb"^/\*!\d+\s*")
_USE = re.compile(rb"^USE `((?:[^`]|``)+)`\s*;?\s*$")
_USE_LINE = re.compile(rb"USE `((?:[^`]|``)+)`;")
_HEAD = re.compile(rb"^(CREATE DATABASE|USE )", re.M)  # as restore.py tells a dump that names its databases
_DDL = re.compile(rb"^(CREATE|DROP) (?:DATABASE|SCHEMA)\b[^`]*`((?:[^`]|``)+)`")

Statements = Iterator[tuple[int, bytes]]


def _name(quoted: bytes) -> str:
    return quoted.decode().replace("``", "`")


def _quote(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _bare(stmt: bytes) -> bytes:
    """The statement without mysqldump's leading versioned comment (`/*!40000 DROP …*/`)."""
    return _VERSIONED.sub(b"", stmt.lstrip(), count=1)


class Databases:
    """Follows the dump's `USE`: which databases it holds (`names`), which system schemas it
    skipped (`skipped`); `wrap` passes the statements on without those of system schemas."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.skipped: list[str] = []
        self.current: str | None = None
        self._created: set[str] = set()

    def _note(self, db: str) -> None:
        into = self.skipped if db.lower() in SYSTEM else self.names
        if db not in into:
            into.append(db)

    def system(self) -> bool:
        return self.current is not None and self.current.lower() in SYSTEM

    def wrap(self, stmts: Statements) -> Statements:
        for line, stmt in stmts:
            bare = _bare(stmt)
            m = _USE.match(bare)
            if m:
                self.current = _name(m.group(1))
                self._note(self.current)
                if self.system():
                    continue
                if self.current not in self._created:  # `mysqldump --no-create-db` writes USE only
                    self._created.add(self.current)
                    yield line, f"CREATE DATABASE IF NOT EXISTS {_quote(self.current)}".encode()
                yield line, stmt
                continue
            m = _DDL.match(bare)
            if m:
                db = _name(m.group(2))
                if m.group(1) == b"CREATE":
                    self._note(db)
                    self._created.add(db)
                if db.lower() in SYSTEM:
                    continue
                yield line, stmt
                continue
            if not self.system():
                yield line, stmt

    def tap(self, blocks: Iterator[bytes]) -> Iterator[bytes]:
        """For a dump the `mariadb` client restores whole: the names of its `USE` lines, as
        the blocks pass (a line split across two blocks is joined first)."""
        rest = b"\n"
        for block in blocks:
            cut = block.rfind(b"\n") + 1
            lines = rest + block[:cut]
            at = lines.find(b"\nUSE `")  # bytes.find, not a regex over every line: 1 GB in seconds
            while at >= 0:
                m = _USE_LINE.match(lines, at + 1)
                if m:
                    self._note(_name(m.group(1)))
                at = lines.find(b"\nUSE `", at + 1)
            rest = (rest + block) if not cut else b"\n" + block[cut:]
            yield block


def named_in(path: str) -> tuple[list[str], list[str]] | None:
    """The databases a dump file names (and the system schemas among them), read without
    restoring anything — None if its head names none (no `CREATE DATABASE`/`USE`). One pass
    over the decompressed dump, so the rules are checked before a breeder exists; once per
    process and file version (the CLI checks, then the flow it runs in-process again)."""
    st = os.stat(path)
    names = _named_in(os.path.realpath(path), st.st_size, st.st_mtime_ns)
    return None if names is None else (list(names[0]), list(names[1]))


@functools.lru_cache(maxsize=8)
def _named_in(path: str, _size: int, _mtime_ns: int) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    from tasks.sources.restore import dump_blocks

    blocks = dump_blocks(path)
    head = b""
    for block in blocks:  # the same first MiB the restore looks at
        head += block
        if len(head) >= 1 << 20:
            break
    if not _HEAD.search(head):
        return None
    dbs = Databases()
    for _ in dbs.tap(itertools.chain([head], blocks)):
        pass
    return tuple(dbs.names), tuple(dbs.skipped)
