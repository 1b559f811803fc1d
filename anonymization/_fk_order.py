"""The order foreign keys put tables in: what the incremental apply groups its writes by."""

from __future__ import annotations

import pymysql


def fk_depths(conn: pymysql.Connection, db: str) -> dict[str, int] | None:
    """Each table's depth below the tables its foreign keys reference (absent: 0); None when
    the references form a cycle (then changes are applied in their order, group by group)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT DISTINCT TABLE_NAME, REFERENCED_TABLE_NAME FROM information_schema.KEY_COLUMN_USAGE "
            "WHERE TABLE_SCHEMA = %s AND REFERENCED_TABLE_SCHEMA = %s AND TABLE_NAME <> REFERENCED_TABLE_NAME",
            (db, db),
        )
        refs: dict[str, set[str]] = {}
        for child, parent in cur.fetchall():
            refs.setdefault(child, set()).add(parent)
    depths: dict[str, int] = {}

    def depth(t: str, seen: frozenset) -> int | None:
        if t in seen:
            return None
        if t not in depths:
            below = [depth(p, seen | {t}) for p in refs.get(t, ())]
            known = [d for d in below if d is not None]
            if len(known) < len(below):
                return None
            depths[t] = 1 + max(known, default=-1)
        return depths[t]

    return depths if all(depth(t, frozenset()) is not None for t in refs) else None
