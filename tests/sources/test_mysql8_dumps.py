"""MySQL 8.0 dumps (mysqldump's exact format, written by hand: tests/generator/mysql8_dump.py)
restored into the real MariaDB breeder, on both paths — the `mariadb` client (one job) and
statement by statement (several jobs, or a dump that names its databases) — and bred through
the CLI into a golden whose objects work for an environment's own account."""

from __future__ import annotations

import json

import pymysql
import pytest

from tasks import catalog
from tasks.sources.restore import RestoreError, restore
from tests.conftest import run_phoenix
from tests.generator.mysql8_dump import TRICKY, checks_dump, customer, functional_index_dump, mysql8_dump

N = 120


def _query(server, sql, args=None, db=None, user=None):
    kw = server.admin().pymysql_kwargs() if user is None else {"host": "127.0.0.1", "port": server.port,
                                                                "user": user, "password": "pw"}
    conn = pymysql.connect(**kw, database=db, autocommit=True, charset="utf8mb4")
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())
    finally:
        conn.close()


def _env_user(server, db):
    """An account like an environment's: all privileges on its database, nothing else."""
    _query(server, "CREATE USER IF NOT EXISTS 'envuser'@'%' IDENTIFIED BY 'pw'")
    _query(server, f"GRANT ALL PRIVILEGES ON `{db}`.* TO 'envuser'@'%'")


@pytest.mark.parametrize("jobs", [1, 2], ids=["client", "statements"])
@pytest.mark.parametrize("named", [False, True], ids=["plain", "databases"])
def test_a_mysql8_dump_restores_with_its_objects_working(mariadb, tmp_path, jobs, named):
    dump = tmp_path / "mysql8.sql"
    dump.write_text(mysql8_dump(n=N, databases=named))
    report = restore(str(dump), mariadb.admin(), "app", jobs=jobs)
    db = "shop" if named else "app"
    assert report.databases == [db]
    assert _query(mariadb, "SELECT COUNT(*) FROM customers", db=db) == [(N,)]
    # rows byte for byte, also a value that looks like the syntax the translation rewrites
    assert _query(mariadb, "SELECT note FROM customers WHERE id = 1", db=db) == [(TRICKY,)]
    assert _query(mariadb, "SELECT email, city FROM customers WHERE id = 5", db=db) == [customer(5)[1:2] + customer(5)[4:5]]
    cols = dict(_query(mariadb, "SELECT COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS "
                                "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'customers'", (db,)))
    assert cols["email"] == "utf8mb4_uca1400_nopad_as_cs" and cols["first_name"] == "utf8mb4_uca1400_nopad_ai_ci"
    assert cols["city"] == "utf8mb4_uca1400_german2_nopad_ai_ci"
    # the invisible column stays invisible, the invisible index is ignored by the optimizer
    assert _query(mariadb, "SELECT EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s "
                           "AND TABLE_NAME = 'customers' AND COLUMN_NAME = 'internal_ref'", (db,)) == [("INVISIBLE",)]
    assert len(_query(mariadb, "SELECT * FROM customers WHERE id = 2", db=db)[0]) == 7
    assert _query(mariadb, "SELECT internal_ref FROM customers WHERE id = 2", db=db) == [("ref-2",)]
    assert {r[0] for r in _query(mariadb, "SELECT IGNORED FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s "
                                          "AND INDEX_NAME = 'by_name'", (db,))} == {"YES"}
    # definers exist as locked accounts; production's account and hash did not come along
    users = _query(mariadb, "SELECT User, Host, JSON_VALUE(Priv, '$.account_locked') FROM mysql.global_priv "
                            "WHERE User IN ('app', 'reporting', 'ops.jane') ORDER BY User")
    assert users == [("app", "%", "1"), ("ops.jane", "10.0.%", "1"), ("reporting", "10.0.%", "1")]
    assert _query(mariadb, "SELECT COUNT(*) FROM mysql.global_priv WHERE Priv LIKE '%caching_sha2%' "
                           "OR Priv LIKE '%$A$005$%'") == [(0,)]
    assert _query(mariadb, "SELECT DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s", (db,)) == \
        [("app@%",)]
    # … and the objects work for another account with rights on the database only
    _env_user(mariadb, db)
    assert _query(mariadb, "SELECT greeting('x')", db=db, user="envuser") == [("Hi x",)]
    assert _query(mariadb, "SELECT n FROM customer_cities WHERE city = 'Berlin'", db=db, user="envuser") == [(40,)]
    _query(mariadb, "INSERT INTO customers (email) VALUES ('new@example.org')", db=db, user="envuser")
    _query(mariadb, "CALL note_visit(1)", db=db, user="envuser")
    assert _query(mariadb, "SELECT what FROM audit ORDER BY id", db=db, user="envuser") == [("insert",), ("visit",)]


@pytest.mark.parametrize("jobs", [1, 2], ids=["client", "statements"])
def test_a_functional_index_fails_the_restore_naming_table_and_line(mariadb, tmp_path, jobs):
    dump = tmp_path / "func.sql"
    dump.write_text(functional_index_dump())
    line = dump.read_text().split("\n").index("  KEY `email_lower` ((lower(`email`)))") + 1
    with pytest.raises(RestoreError) as err:
        restore(str(dump), mariadb.admin(), "app", jobs=jobs)
    msg = str(err.value)
    assert msg.startswith(f"{dump}: line {line}: table `contacts` has a functional index `email_lower`"), msg
    assert "generated column" in msg and "\n" not in msg


@pytest.mark.parametrize("jobs", [1, 2], ids=["client", "statements"])
def test_unenforced_checks_are_dropped_so_the_rows_mysql_took_restore(mariadb, tmp_path, jobs):
    dump = tmp_path / "checks.sql"
    dump.write_text(checks_dump())
    report = restore(str(dump), mariadb.admin(), "app", jobs=jobs)
    assert _query(mariadb, "SELECT COUNT(*) FROM order_lines", db="app") == [(3,)]  # rows breaking both
    assert _query(mariadb, "SELECT CONSTRAINT_NAME FROM information_schema.CHECK_CONSTRAINTS "
                           "WHERE CONSTRAINT_SCHEMA = 'app'") == [("order_lines_chk_1",)]  # the enforced one stays
    assert [n.split(":")[1].split("`")[1] for n in report.notes] == ["price_positive", "qty_small"]


def test_a_collation_without_equivalent_fails_with_what_to_do(mariadb, tmp_path):
    dump = tmp_path / "zh.sql"
    dump.write_text(mysql8_dump(n=3).replace("utf8mb4_de_pb_0900_ai_ci", "utf8mb4_zh_0900_as_cs"))
    with pytest.raises(RestoreError, match=r"line \d+: collation utf8mb4_zh_0900_as_cs has no MariaDB equivalent"):
        restore(str(dump), mariadb.admin(), "app")


RULES = """\
tables:
  customers:
    columns: {email: email, first_name: first_name, last_name: last_name, city: city, note: {strategy: fixed, args: {value: x}}}
"""


@pytest.fixture
def _latest_as_it_was(storage_local):
    """This golden holds another database than the shop: removed after the test, so later tests
    (which take `latest` for the shop golden) never find it there."""
    before = {g.id for g in catalog.generations(storage_local)}
    yield
    for g in catalog.generations(storage_local):
        if g.id not in before and g.clones == 0:
            catalog.remove_generation(storage_local, g.id)


def _as_env(info: dict, sql: str) -> list[tuple]:
    conn = pymysql.connect(host=info["host"], port=info["port"], user=info["user"], password=info["password"],
                           database="shop", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


def test_a_mysql8_dump_breeds_a_golden_whose_objects_work(storage_local, tmp_path, _latest_as_it_was):
    dump = tmp_path / "mysql8.sql"
    dump.write_text(mysql8_dump(n=N, databases=True))
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    res = run_phoenix("breed", "--source", str(dump), "--rules", str(rules), "--json")
    assert res.returncode == 0, res.stderr[-2500:]
    result = json.loads(res.stdout.strip().splitlines()[-1])
    assert result["databases"] == ["shop"] and result["rows"]["customers"] == N
    assert result["golden"] == catalog.latest(storage_local)
    spawned = run_phoenix("spawn", "mysql8-env", "--generation", result["golden"], "--recreate", "--json")
    assert spawned.returncode == 0, spawned.stderr[-1500:]
    info = json.loads(spawned.stdout.strip().splitlines()[-1])
    try:
        emails = {e for (e,) in _as_env(info, "SELECT email FROM customers")}
        assert len(emails) == N and not any(e.startswith("kunde") for e in emails)
        assert _as_env(info, "SELECT greeting('x')") == [("Hi x",)]
        assert sum(n for (n,) in _as_env(info, "SELECT n FROM customer_cities")) == N
        _as_env(info, "INSERT INTO customers (email) VALUES ('new@example.org')")
        _as_env(info, "CALL note_visit(1)")
        assert _as_env(info, "SELECT what FROM audit ORDER BY id") == [("insert",), ("visit",)]
        assert _as_env(info, "SELECT DEFINER FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'shop' "
                             "ORDER BY ROUTINE_NAME") == [("app@%",), ("ops.jane@10.0.%",)]
    finally:
        run_phoenix("teardown", "mysql8-env")
