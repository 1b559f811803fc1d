"""An incremental apply's table checksums by difference (anonymization/_delta.py) equal what
CHECKSUM TABLE reads afterwards — through inserts, updates, deletes, a row inserted and then
changed, and the rows foreign-key cascades change without an event of their own; a table an
ON UPDATE cascade reaches is left to be read whole."""

from __future__ import annotations

from anonymization import load_rules
from anonymization.incremental import Applier
from phoenix.db import connect

SCHEMA = [
    "CREATE TABLE people (id INT PRIMARY KEY, email VARCHAR(100) NOT NULL UNIQUE, name VARCHAR(50))",
    "CREATE TABLE orders (id INT PRIMARY KEY, person_id INT NOT NULL, total DECIMAL(8,2), "
    "FOREIGN KEY (person_id) REFERENCES people (id) ON DELETE CASCADE)",
    "CREATE TABLE items (id INT PRIMARY KEY, order_id INT NOT NULL, sku VARCHAR(20), note TEXT, "
    "FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE)",
    "CREATE TABLE notes (id INT PRIMARY KEY, person_id INT NULL, body VARCHAR(50), "
    "FOREIGN KEY (person_id) REFERENCES people (id) ON DELETE SET NULL)",
    "CREATE TABLE tags (id INT PRIMARY KEY, email VARCHAR(100) NOT NULL, "
    "FOREIGN KEY (email) REFERENCES people (email) ON UPDATE CASCADE)",
    "CREATE TABLE untouched (id INT PRIMARY KEY, v INT)",
]


def _person(i: int, name: str = "") -> dict:
    return {"id": i, "email": f"p{i}@example.org", "name": name or f"Person {i}"}


def _sums(conn, tables) -> dict[str, int]:
    with conn.cursor() as cur:
        cur.execute("CHECKSUM TABLE " + ", ".join(tables))
        return {t.split(".", 1)[1]: int(c) for t, c in cur.fetchall()}


def test_checksums_by_difference_equal_the_tables_read_whole(mariadb, tmp_path):
    conn = connect(mariadb.admin(), None)
    with conn.cursor() as cur:
        cur.execute("CREATE DATABASE d")
        cur.execute("USE d")
        for sql in SCHEMA:
            cur.execute(sql)
        for i in range(1, 9):
            p = _person(i)
            cur.execute("INSERT INTO people VALUES (%s, %s, %s)", (p["id"], p["email"], p["name"]))
            cur.execute("INSERT INTO orders VALUES (%s, %s, %s)", (i * 10, i, i * 1.5))
            cur.execute("INSERT INTO items VALUES (%s, %s, %s, %s)", (i * 100, i * 10, f"sku{i}", "x" * i))
            cur.execute("INSERT INTO items VALUES (%s, %s, %s, NULL)", (i * 100 + 1, i * 10, f"sku{i}b"))
            cur.execute("INSERT INTO notes VALUES (%s, %s, %s)", (i, i, f"note {i}"))
            if i % 2 == 0:  # (a tag holds its person: no erasure of these)
                cur.execute("INSERT INTO tags VALUES (%s, %s)", (i, p["email"]))
            cur.execute("INSERT INTO untouched VALUES (%s, %s)", (i, i))
    tables = ["people", "orders", "items", "notes", "tags", "untouched"]
    golden = _sums(conn, [f"d.{t}" for t in tables])
    (tmp_path / "rules.yaml").write_text("tables:\n  people:\n    columns: {name: name}\n")
    rules = {"d": load_rules(tmp_path / "rules.yaml")}

    with Applier(mariadb.admin(), rules, b"k" * 32, track=True) as applier:
        applier.apply("d", "people", "insert", [_person(20)])
        applier.apply("d", "orders", "insert", [{"id": 200, "person_id": 20, "total": 3}])
        applier.apply("d", "items", "insert", [{"id": 2000, "order_id": 200, "sku": "new", "note": None}])
        applier.commit()
        # a row new in this cycle, changed again: never taken for one of the golden's
        applier.apply("d", "items", "update", [({"id": 2000, "order_id": 200, "sku": "new", "note": None},
                                                {"id": 2000, "order_id": 200, "sku": "newer", "note": "n"})])
        applier.apply("d", "people", "update", [(_person(2), _person(2, "Renamed Two"))])
        applier.apply("d", "items", "delete", [{"id": 501, "order_id": 50, "sku": "sku5b", "note": None}])
        applier.commit()
        # an erasure: orders and items cascade, notes are set to NULL — none of it in the stream
        applier.apply("d", "people", "delete", [_person(3)])
        applier.apply("d", "items", "update", [({"id": 400, "order_id": 40, "sku": "sku4", "note": "xxxx"},
                                                {"id": 400, "order_id": 40, "sku": "sku4", "note": "changed"})])
        applier.apply("d", "people", "update", [(_person(4), {**_person(4), "email": "moved@example.org"})])
        applier.commit()
        derived = applier.checksums(golden, lambda db, t: t)

    now = _sums(conn, [f"d.{t}" for t in tables])
    assert now != golden
    assert set(derived) == {"people", "orders", "items", "notes", "untouched"}  # tags: below ON UPDATE CASCADE
    assert derived == {t: now[t] for t in derived}
    assert derived["untouched"] == golden["untouched"] and derived["orders"] != golden["orders"]
    with conn.cursor() as cur:
        cur.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'd' AND TABLE_NAME REGEXP '^_phx_(was|key|now)_'")
        assert cur.fetchall() == ()  # what the difference kept is dropped
