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


def test_keys_leave_create_table_and_come_back_after_the_rows():
    from tasks.sources._keys import Deferral, split_create

    create = (b"CREATE TABLE `t` (\n  `id` int NOT NULL,\n  `n` int NOT NULL AUTO_INCREMENT,\n  `p` int,\n"
              b"  PRIMARY KEY (`id`),\n  KEY `by_n` (`n`),\n  UNIQUE KEY `u` (`p`,`id`),\n"
              b"  CONSTRAINT `fk` FOREIGN KEY (`p`) REFERENCES `x` (`id`)\n) ENGINE=InnoDB")
    stripped, defs = split_create(create)
    # The AUTO_INCREMENT column's key must stay; the last kept line loses its comma.
    assert defs == [b"UNIQUE KEY `u` (`p`,`id`)", b"CONSTRAINT `fk` FOREIGN KEY (`p`) REFERENCES `x` (`id`)"]
    assert b"  KEY `by_n` (`n`)\n) ENGINE" in stripped
    held = Deferral(hold=lambda t: t == "held")
    out = [s for _, s in held.wrap(iter([
        (1, create), (2, b"INSERT INTO `t` VALUES (1,1,1)"), (3, b"/*!40000 ALTER TABLE `t` ENABLE KEYS */"),
        (4, create.replace(b"`t`", b"`held`", 1)), (5, b"CREATE TABLE `plain` (`id` int)"),
        (6, create.replace(b"`t`", b"`nomarker`", 1))]))]
    assert out[:3] == [stripped, b"INSERT INTO `t` VALUES (1,1,1)", b"/*!40000 ALTER TABLE `t` ENABLE KEYS */"]
    assert out[3] == b"ALTER TABLE `t` ADD " + b", ADD ".join(defs)
    assert out[-1] == b"ALTER TABLE `nomarker` ADD " + b", ADD ".join(defs)  # no marker: at the end
    assert held.held == {"held": [d.decode() for d in defs]} and not any(b"`held` ADD" in s for s in out)


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
