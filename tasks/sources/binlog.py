"""The source's changes between two positions, read from its binary log as whole
transactions, in commit order — with `mysql-replication` (PyPI), which speaks the
replication protocol over pymysql and decodes row events by the table map's column names.

What cannot be applied to an anonymized copy row by row stops the read with
IncrementalUnsupported, naming the event's position and why: DDL on a source database,
a statement-format change, a row event without column names. Events of other databases
are passed over. The row values are originals: they live in this process's memory only
and are never logged (`Change.__repr__` shows none).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from phoenix.errors import IncrementalUnsupported
from tasks.sources.live import Live, Position

Kind = Literal["insert", "update", "delete"]
_BOUNDARY = re.compile(r"^\s*(BEGIN|COMMIT|XA (START|END|PREPARE|COMMIT))\b", re.IGNORECASE)
_DML = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE|LOAD DATA)\b", re.IGNORECASE)
# Statements of a session that change no table (the source's own housekeeping).
_HARMLESS = re.compile(r"^\s*(FLUSH|GRANT|REVOKE|(CREATE|DROP|ALTER|RENAME) USER|SET PASSWORD|ANALYZE)\b", re.I)


@dataclass
class Change:
    """One row event: its rows' values (update: (before, after) pairs), by column name."""

    database: str
    table: str
    kind: Kind
    rows: list = field(default_factory=list)
    position: str = ""

    def __repr__(self) -> str:  # never the values
        return f"Change({self.kind} {self.database}.{self.table}: {len(self.rows)} rows at {self.position})"


@dataclass
class Transaction:
    changes: list[Change]
    end: Position


def transactions(live: Live, start: Position, end: Position, databases: set[str]) -> Iterator[Transaction]:
    """The committed transactions after `start` up to `end` (inclusive) that touch
    `databases`; IncrementalUnsupported at the first event that cannot be applied."""
    from pymysqlreplication import BinLogStreamReader
    from pymysqlreplication.event import QueryEvent, RotateEvent, XidEvent
    from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

    kinds: dict[type, Kind] = {WriteRowsEvent: "insert", UpdateRowsEvent: "update", DeleteRowsEvent: "delete"}
    reader = BinLogStreamReader(
        connection_settings=live.settings(), server_id=random.randint(1 << 20, 1 << 31), log_file=start.file,
        log_pos=start.pos, resume_stream=True, blocking=False, enable_logging=False,
        # Each row event follows its table's map: decoded once per table id, not every time (a
        # third of the apply's CPU). Safe: DDL ends the cycle (`_query`), a table's id changes
        # when its definition does, and the reader forgets the ids at each rotation.
        freeze_schema=True,
        only_events=[QueryEvent, XidEvent, RotateEvent, WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent],
    )
    pending: list[Change] = []
    try:
        for event in reader:
            if isinstance(event, RotateEvent):
                continue
            at = Position.at(reader.log_file, event.packet.log_pos)
            if at > end:
                break
            if type(event) in kinds:
                pending.append(_change(event, kinds[type(event)], at, databases))
            elif isinstance(event, XidEvent) or (isinstance(event, QueryEvent) and _query(event, at, databases)):
                changes = [c for c in pending if c.database in databases]
                pending = []
                if changes:
                    yield Transaction(changes, at)
            if at == end:
                break
    finally:
        reader.close()


def _query(event, at: Position, databases: set[str]) -> bool:
    """Whether a query event ends a transaction (COMMIT); IncrementalUnsupported for a change
    this cycle cannot apply row by row."""
    sql = event.query if isinstance(event.query, str) else event.query.decode(errors="replace")
    schema = event.schema.decode(errors="replace") if isinstance(event.schema, bytes) else str(event.schema or "")
    if _BOUNDARY.match(sql):
        return sql.strip().upper().startswith("COMMIT")
    if _HARMLESS.match(sql):
        return False
    named = schema in databases or any(re.search(rf"`?{re.escape(db)}`?\s*\.", sql) for db in databases)
    if not named:
        return False
    what = "a statement-format change" if _DML.match(sql) else f"DDL ({sql.split(None, 1)[0].upper()} …)"
    raise IncrementalUnsupported(f"{what} in the source's binary log at {at}: the rows it changed are not in the log; "
                                 "a full cycle copies the source as it is now", position=str(at))


def _change(event, kind: Kind, at: Position, databases: set[str]) -> Change:
    c = Change(event.schema, event.table, kind, position=str(at))
    if c.database not in databases:
        return c
    for row in event.rows:
        values = (row["before_values"], row["after_values"]) if kind == "update" else row["values"]
        names = values[0] if kind == "update" else values
        if any(str(n).startswith("UNKNOWN_COL") for n in names):
            raise IncrementalUnsupported(f"a row event of {c.database}.{c.table} at {at} has no column names: "
                                         "set binlog_row_metadata=FULL on the source", position=str(at))
        c.rows.append(values)
    return c
