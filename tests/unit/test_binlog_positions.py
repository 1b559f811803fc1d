"""Where an incremental cycle starts and what stops it, without a server: the position a
`--master-data` dump records, their order across files, and which binary-log queries end a
transaction, pass, or cannot be applied row by row."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from phoenix.errors import IncrementalUnsupported
from tasks.sources.binlog import _query
from tasks.sources.live import Position, position_in_dump

AT = Position.at("mysql-bin.000003", 1234)


def test_the_dumps_change_master_comment_is_its_position():
    head = (b"-- MariaDB dump 10.19\n--\n-- Position to start replication or point-in-time recovery from\n--\n\n"
            b"-- CHANGE MASTER TO MASTER_LOG_FILE='mysql-bin.000002', MASTER_LOG_POS=3306;\n\nCREATE TABLE t (id int);\n")
    assert position_in_dump(head) == Position.at("mysql-bin.000002", 3306)
    assert position_in_dump(b"-- MariaDB dump 10.19\nCREATE TABLE t (id int);\n") is None


def test_positions_order_by_file_then_offset_and_survive_json():
    assert Position.at("mysql-bin.000002", 999999) < Position.at("mysql-bin.000010", 4) < Position.at("mysql-bin.000010", 5)
    assert Position.from_json(AT.to_json()) == AT and str(AT) == "mysql-bin.000003:1234"
    assert Position.from_json(None) is None


def _q(sql: str, schema: bytes = b"shop") -> bool:
    return _query(SimpleNamespace(query=sql, schema=schema), AT, {"shop"})


def test_commit_ends_a_transaction_and_housekeeping_passes():
    assert _q("COMMIT") is True
    assert _q("BEGIN") is False
    assert _q("FLUSH PRIVILEGES", b"") is False
    assert _q("CREATE TABLE other.t (id int)", b"other") is False  # another database


@pytest.mark.parametrize("sql, what", [
    ("ALTER TABLE customers ADD COLUMN x INT", "DDL (ALTER …)"),
    ("CREATE TABLE `shop`.coupons (id int)", "DDL (CREATE …)"),
    ("UPDATE customers SET email = 'x'", "a statement-format change"),
])
def test_ddl_or_a_statement_on_the_source_database_stops_the_cycle_with_its_position(sql, what):
    schema = b"other" if "`shop`." in sql else b"shop"
    with pytest.raises(IncrementalUnsupported) as err:
        _q(sql, schema)
    assert str(err.value).startswith(f"{what} in the source's binary log at {AT}")
    assert err.value.position == str(AT) and "email = 'x'" not in str(err.value)
