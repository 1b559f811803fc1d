"""Real `mariadb-dump` output in the forms production uses (issue 13's fixtures): `--hex-blob`
BLOBs, `--skip-extended-insert` (one INSERT a row) or extended inserts (a table's whole data
in one INSERT), a generated column, FULLTEXT and SPATIAL indexes, a view, a routine, an event
and a trigger with definers. Each breeds; the golden's objects equal the source's, the
unruled tables' data is unchanged, and no original of a ruled column survives."""

from __future__ import annotations

import json

import pymysql
import pytest

from tasks.runtime.local import LocalRuntime
from tests.breed.test_dump_databases import _dump, _latest_as_it_was, _spawn, _sql  # noqa: F401 (fixture)
from tests.conftest import run_phoenix

N = 60
RULES = """\
tables:
  customers:
    columns: {email: email, first_name: first_name, last_name: last_name}
"""
# What must be identical in the golden: every column of the objects but their timestamps.
OBJECTS = {
    "TRIGGERS": "TRIGGER_NAME, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_ORDER, ACTION_STATEMENT, ACTION_TIMING, "
                "SQL_MODE, DEFINER, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, DATABASE_COLLATION",
    "ROUTINES": "ROUTINE_NAME, ROUTINE_TYPE, DATA_TYPE, ROUTINE_DEFINITION, IS_DETERMINISTIC, SQL_DATA_ACCESS, "
                "SECURITY_TYPE, SQL_MODE, DEFINER, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, DATABASE_COLLATION",
    "VIEWS": "TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, IS_UPDATABLE, DEFINER, SECURITY_TYPE, CHARACTER_SET_CLIENT, "
             "COLLATION_CONNECTION, ALGORITHM",
    "EVENTS": "EVENT_NAME, DEFINER, EVENT_BODY, EVENT_DEFINITION, EVENT_TYPE, INTERVAL_VALUE, INTERVAL_FIELD, SQL_MODE, "
              "STATUS, ON_COMPLETION, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, DATABASE_COLLATION",
}
SCHEMA = {"TRIGGERS": "TRIGGER_SCHEMA", "ROUTINES": "ROUTINE_SCHEMA", "VIEWS": "TABLE_SCHEMA", "EVENTS": "EVENT_SCHEMA"}


def _source(server) -> None:
    customers = ", ".join(f"({i}, 'kunde{i}@mailbox-{i % 5}.de', 'Vorname{i}x', 'Nachname{i}y', "
                          f"UNHEX('00275C{i:04X}FF0A0D'))" for i in range(1, N + 1))
    _sql(server, "CREATE DATABASE fmt", "CREATE USER 'reporting'@'%'", "GRANT ALL ON fmt.* TO 'reporting'@'%'",
         "CREATE TABLE fmt.customers (id INT PRIMARY KEY, email VARCHAR(120) NOT NULL, first_name VARCHAR(60), "
         "last_name VARCHAR(60), photo BLOB, initials VARCHAR(4) AS (CONCAT(LEFT(first_name, 1), LEFT(last_name, 1))) "
         "VIRTUAL, UNIQUE KEY email (email))",
         f"INSERT INTO fmt.customers (id, email, first_name, last_name, photo) VALUES {customers}",
         "CREATE TABLE fmt.notes (id INT PRIMARY KEY, body TEXT, FULLTEXT KEY body (body)) ENGINE=InnoDB",
         "INSERT INTO fmt.notes SELECT seq, CONCAT('delivery window ', seq, ' morning') FROM fmt.seq_1_to_40",
         "CREATE TABLE fmt.places (id INT PRIMARY KEY, pos POINT NOT NULL, SPATIAL KEY pos (pos)) ENGINE=InnoDB",
         "INSERT INTO fmt.places SELECT seq, POINT(seq, seq / 2) FROM fmt.seq_1_to_40",
         "CREATE TABLE fmt.audit (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(20))",
         "CREATE DEFINER = 'reporting'@'%' TRIGGER fmt.notes_ai AFTER INSERT ON fmt.notes FOR EACH ROW "
         "INSERT INTO fmt.audit (what) VALUES ('note')",
         "CREATE DEFINER = 'reporting'@'%' SQL SECURITY DEFINER VIEW fmt.domains AS "
         "SELECT SUBSTRING_INDEX(email, '@', -1) AS domain, COUNT(*) AS n FROM fmt.customers GROUP BY 1",
         "CREATE DEFINER = 'reporting'@'%' PROCEDURE fmt.note_count(OUT n INT) SELECT COUNT(*) INTO n FROM fmt.notes",
         "CREATE DEFINER = 'reporting'@'%' EVENT fmt.nightly ON SCHEDULE EVERY 1 DAY DISABLE "
         "DO DELETE FROM fmt.audit WHERE id < 0")


def _objects(admin, db: str) -> dict[str, list[tuple]]:
    conn = pymysql.connect(**admin.pymysql_kwargs())
    try:
        with conn.cursor() as cur:
            out = {}
            for table, cols in OBJECTS.items():
                cur.execute(f"SELECT {cols} FROM information_schema.{table} WHERE {SCHEMA[table]} = %s ORDER BY 1", (db,))
                out[table] = list(cur.fetchall())
            for t in ("notes", "places", "customers"):
                cur.execute(f"SHOW CREATE TABLE `{db}`.`{t}`")
                out[t] = [cur.fetchone()[1]]
            cur.execute(f"CHECKSUM TABLE `{db}`.notes, `{db}`.places")
            out["checksums"] = [r[1] for r in cur.fetchall()]
            return out
    finally:
        conn.close()


@pytest.mark.parametrize("form", [["--hex-blob"], ["--hex-blob", "--skip-extended-insert"]],
                         ids=["hex-blob, whole table in one INSERT", "hex-blob, one INSERT a row"])
def test_production_dump_forms_breed_with_their_objects_intact(mariadb, storage_local, settings, tmp_path, form):
    _source(mariadb)
    dump = _dump(mariadb, tmp_path / "fmt.sql", "--events", *form, "--databases", "fmt")
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    res = run_phoenix("breed", "--source", str(dump), "--rules", str(rules), "--json")
    assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr[-2500:]
    gen = json.loads(res.stdout.strip().splitlines()[-1])["golden"]
    info = _spawn("fmt-env", gen)
    try:
        golden = _objects(LocalRuntime(settings, storage_local).admin(info["id"]), "fmt")
        assert all(golden[t] for t in OBJECTS), golden  # a trigger, routine, view and event each
        assert golden == _objects(mariadb.admin(), "fmt")
        conn = pymysql.connect(host=info["host"], port=info["port"], user=info["user"], password=info["password"],
                               database="fmt")
        with conn.cursor() as cur:
            cur.execute("SELECT email, first_name, last_name, photo, initials FROM customers ORDER BY id")
            rows = cur.fetchall()
            cur.execute("SELECT COUNT(*) FROM notes WHERE MATCH(body) AGAINST ('delivery')")
            (matched,) = cur.fetchone()
            cur.execute("SELECT COUNT(*) FROM places "
                        "WHERE MBRContains(ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 10,0 0))'), pos)")
            (inside,) = cur.fetchone()
        conn.close()
        assert len(rows) == N and matched == 40 and inside == 10
        assert not any(e.startswith("kunde") or f.startswith("Vorname") or la.startswith("Nachname")
                       for e, f, la, _p, _i in rows)
        assert [p for *_, p, _i in rows] == [bytes.fromhex(f"00275C{i:04X}FF0A0D") for i in range(1, N + 1)]
        assert all(i == f[0] + la[0] for _e, f, la, _p, i in rows)  # the generated column follows the pseudonyms
    finally:
        run_phoenix("teardown", "fmt-env")
