"""A mysqldump-format dump restored over several connections gives exactly what one
`mariadb` client gives, and its errors still name the dump's line."""

from __future__ import annotations

import pymysql
import pytest
import zstandard

from tasks.sources._parallel import StatementError, kind, statements
from tasks.sources.restore import RestoreError, restore

TABLES = ("customers", "addresses", "products", "orders", "order_items", "payments",
          "newsletter_subscribers", "support_tickets", "login_events")


def _fingerprint(server, db: str) -> dict:
    conn = pymysql.connect(**server.admin().pymysql_kwargs(), database=db)
    with conn.cursor() as cur:
        cur.execute(f"CHECKSUM TABLE {', '.join(TABLES)}")
        sums = {name.split(".")[1]: value for name, value in cur.fetchall()}
        cur.execute("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s", (db,))
        sums["triggers"] = sorted(r[0] for r in cur.fetchall())
        cur.execute("SELECT COUNT(*), SUM(total_cents) FROM customer_order_totals")
        sums["view"] = cur.fetchone()
        cur.execute("SELECT SUM(loyalty_points) FROM customers")  # the trigger must not have fired
        sums["loyalty"] = cur.fetchone()
    conn.close()
    return sums


def test_three_connections_restore_exactly_what_one_client_does(mariadb, shop_dump):
    one = restore(str(shop_dump), mariadb.admin(), "one", jobs=1)
    three = restore(str(shop_dump), mariadb.admin(), "three", jobs=3)
    assert one.bytes_read == three.bytes_read
    a, b = _fingerprint(mariadb, "one"), _fingerprint(mariadb, "three")
    assert a == b and all(a[t] for t in TABLES) and a["triggers"] == ["orders_after_insert"]


def test_a_syntax_error_names_the_dump_line(mariadb, shop_dump, tmp_path):
    sql = zstandard.ZstdDecompressor().decompressobj().decompress(shop_dump.read_bytes())
    bad_sql = sql.replace(b"INSERT INTO `orders`", b"INSERT INTO orders VALUES ((", 1)
    line = bad_sql[: bad_sql.index(b"INSERT INTO orders VALUES ((")].count(b"\n") + 1
    bad = tmp_path / "bad.sql"
    bad.write_bytes(bad_sql)
    with pytest.raises(RestoreError, match=rf"at line {line}: ERROR 1064") as err:
        restore(str(bad), mariadb.admin(), "bad", jobs=2)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_a_dump_cut_inside_a_statement_is_a_truncated_file(mariadb, shop_dump, tmp_path):
    sql = zstandard.ZstdDecompressor().decompressobj().decompress(shop_dump.read_bytes())
    bad = tmp_path / "cut.sql"
    bad.write_bytes(sql[: len(sql) // 2])
    with pytest.raises(RestoreError, match=r"at line \d+: the last statement has no end \(truncated file"):
        restore(str(bad), mariadb.admin(), "cut", jobs=2)


def test_statements_follow_delimiters_and_count_lines():
    dump = (b"-- head\n/*!40101 SET NAMES utf8mb4 */;\n\nCREATE TABLE t (\n  a int\n);\n"
            b"INSERT INTO t VALUES (1),(2);\nDELIMITER ;;\nCREATE TRIGGER x BEFORE INSERT ON t\n"
            b"FOR EACH ROW BEGIN SET NEW.a = 1; END ;;\nDELIMITER ;\nLOCK TABLES `t` WRITE;\n")
    got = list(statements(iter([dump[:30], dump[30:77], dump[77:]])))  # blocks cut mid-line
    assert [line for line, _ in got] == [2, 4, 7, 9, 12]
    assert [kind(s) for _, s in got] == ["session", "ddl", "rows", "ddl", "skip"]
    assert got[3][1].endswith(b"SET NEW.a = 1; END ")
    with pytest.raises(StatementError) as err:
        list(statements(iter([b"SELECT 1;\nINSERT INTO t VALUES (1),\n(2"])))
    assert err.value.line == 2
