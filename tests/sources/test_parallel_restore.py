"""A mysqldump-format dump restored over several connections gives exactly what one
`mariadb` client gives, and its errors still name the dump's line."""

from __future__ import annotations

import re

import pymysql
import pytest
import zstandard

from tasks.sources.restore import RestoreError, restore

TABLES = ("customers", "addresses", "products", "orders", "order_items", "payments",
          "newsletter_subscribers", "support_tickets", "login_events")


def _fingerprint(server, db: str) -> dict:
    conn = pymysql.connect(**server.admin().pymysql_kwargs(), database=db)
    with conn.cursor() as cur:
        cur.execute(f"CHECKSUM TABLE {', '.join(TABLES)}")
        sums = {name.split(".")[1]: value for name, value in cur.fetchall()}
        for t in TABLES:  # keys added after the rows (tasks/sources/_keys.py): the same definitions
            cur.execute(f"SHOW CREATE TABLE {t}")
            sums[f"{t} definition"] = cur.fetchone()[1]
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
    at = bad_sql.index(b"INSERT INTO orders VALUES ((")
    line = bad_sql[:at].count(b"\n") + 1
    bad = tmp_path / "bad.sql"
    bad.write_bytes(bad_sql)
    with pytest.raises(RestoreError, match=rf"at line {line}, byte (\d+), table `orders`: ERROR 1064") as err:
        restore(str(bad), mariadb.admin(), "bad", jobs=2)
    byte = int(re.search(r"byte (\d+)", str(err.value)).group(1))  # where in that line the server stopped
    assert at < byte < bad_sql.index(b"\n", at)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_a_dump_cut_inside_a_statement_is_a_truncated_file(mariadb, shop_dump, tmp_path):
    sql = zstandard.ZstdDecompressor().decompressobj().decompress(shop_dump.read_bytes())
    bad = tmp_path / "cut.sql"
    bad.write_bytes(sql[: len(sql) // 2])
    with pytest.raises(RestoreError, match=rf"the dump ends at line \d+, byte {len(sql) // 2}, table `\w+`, inside the "
                                           r"statement begun at line \d+; the file was cut short \(truncated file\)"):
        restore(str(bad), mariadb.admin(), "cut", jobs=2)


def test_a_statement_picked_as_deadlock_victim_runs_again(mariadb):
    """A real InnoDB deadlock: the loader's INSERT holds row 50 and waits for row 100, held
    by a bigger transaction that then asks for row 50. InnoDB rolls the smaller one (the
    loader's) back; the loader runs it again and the restore goes on."""
    import threading
    import time

    from tasks.sources._parallel import load

    kw = mariadb.admin().pymysql_kwargs()
    admin_conn = pymysql.connect(**kw, autocommit=True)
    admin_conn.query("CREATE DATABASE dl")
    admin_conn.query("CREATE TABLE dl.t (id INT PRIMARY KEY)")
    holder = pymysql.connect(**kw, database="dl")
    holder.begin()
    holder.query("INSERT INTO t SELECT seq FROM seq_1000_to_1999")  # the heavier transaction
    holder.query("INSERT INTO t VALUES (100)")
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(load(iter([b"INSERT INTO t VALUES (50),(100);\n"]), mariadb.admin(), "dl", 1))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            outcome.append(exc)

    loader = threading.Thread(target=run)
    loader.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # until the loader waits for row 100
        with admin_conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = 'LOCK WAIT'")
            if cur.fetchone()[0]:
                break
        time.sleep(0.05)
    holder.query("INSERT INTO t VALUES (50)")  # closes the cycle: the loader is the victim
    holder.rollback()
    loader.join(30)
    assert outcome == [1]
    with admin_conn.cursor() as cur:
        cur.execute("SELECT id FROM dl.t ORDER BY id")
        assert [r[0] for r in cur.fetchall()] == [50, 100]
    holder.close()
    admin_conn.close()
