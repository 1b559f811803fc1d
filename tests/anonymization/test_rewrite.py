"""How a table's rewritten rows take its place: parallel slices, unique collisions, the swap, foreign keys pointing at swapped tables."""

from __future__ import annotations

import pymysql
import pytest

from anonymization import anonymize, load_rules
from anonymization.keyed import derive, hmac_hex
from anonymization.strategies import email_input

KEY = b"test-key-0123456789abcdef-0123456789"
RULES = """
locale: [en_US, de_DE]
email_domain: example.invalid
tables:
  members:
    columns: {email: email, name: name}
  parents:
    columns: {name: name}
  children:
    columns: {email: email}
"""
SCHEMA = [
    # utf8mb4_bin: 'Ann@x.org' and ' ann@x.org' are distinct here but have one pseudonym.
    "CREATE TABLE members (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50), "
    "email VARCHAR(100) COLLATE utf8mb4_bin NOT NULL, KEY name (name), UNIQUE KEY email (email)) AUTO_INCREMENT=90000",
    "INSERT INTO members (id, name, email) SELECT seq * 3, CONCAT('n', seq), CONCAT('m', seq, '@x.org') "
    "FROM seq_1_to_20000",
    "INSERT INTO members (id, name, email) VALUES (7, 'a', 'Ann@x.org'), (2, 'b', ' ann@x.org'), (8, 'c', 'ann@x.org')",
    "CREATE TABLE parents (id INT PRIMARY KEY, name VARCHAR(50))",
    "CREATE TABLE children (id INT AUTO_INCREMENT PRIMARY KEY, parent_id INT, email VARCHAR(100) UNIQUE, "
    "CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES parents (id)) AUTO_INCREMENT=500",
    "INSERT INTO parents SELECT seq, CONCAT('p', seq) FROM seq_1_to_50",
    "INSERT INTO children (id, parent_id, email) SELECT seq, 1 + seq MOD 50, CONCAT('c', seq, '@x.org') FROM seq_1_to_300",
    "CREATE TRIGGER children_bi BEFORE INSERT ON children FOR EACH ROW SET NEW.email = LOWER(NEW.email)",
]


def q(server, db, *sqls):
    conn = pymysql.connect(**server.admin().pymysql_kwargs(), database=db, autocommit=True)
    try:
        with conn.cursor() as cur:
            for sql in sqls:
                cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


@pytest.fixture
def db(mariadb, tmp_path):
    for name in ("a", "b"):
        q(mariadb, None, f"CREATE DATABASE {name}")
        q(mariadb, name, *SCHEMA)
    (tmp_path / "rules.yaml").write_text(RULES)
    return mariadb, load_rules(tmp_path / "rules.yaml")


def shape(server, db):
    return {t: q(server, db, f"SHOW CREATE TABLE {t}")[0][1] for t in ("members", "parents", "children")}


def test_collisions_resolved_deterministically_and_tables_keep_their_shape(db):
    server, rules = db
    before = shape(server, "a")
    anonymize(server.admin(), "a", rules, KEY, workers=2)
    anonymize(server.admin(), "b", rules, KEY, workers=1)  # slices or not: the same rows
    rows = q(server, "a", "SELECT * FROM members ORDER BY id")
    assert rows == q(server, "b", "SELECT * FROM members ORDER BY id")
    assert len(rows) == 20003 and len({r[2] for r in rows}) == 20003
    # The three spellings of one address share a pseudonym; the lowest id keeps it, the others get variants.
    fake = q(server, "a", "SELECT email FROM members WHERE id = 2")[0][0]
    assert fake.endswith("." + hmac_hex(derive(KEY, "email"), email_input("Ann@x.org"))[16:26] + "@example.invalid")
    local, domain = fake.split("@")
    assert q(server, "a", "SELECT id, email FROM members WHERE id IN (2, 7, 8) ORDER BY id") == (
        (2, fake), (7, f"{local}.2@{domain}"), (8, f"{local}.3@{domain}"))
    # Keys in their order, foreign key, AUTO_INCREMENT: SHOW CREATE TABLE is unchanged.
    assert shape(server, "a") == before


def test_swapped_tables_keep_foreign_keys_and_triggers(db):
    server, rules = db
    anonymize(server.admin(), "a", rules, KEY)
    assert q(server, "a", "SELECT COUNT(*) FROM children WHERE email LIKE '%@example.invalid'")[0][0] == 300
    assert q(server, "a", "SELECT COUNT(*) FROM parents WHERE name LIKE 'p%'")[0][0] < 50
    assert [r[0] for r in q(server, "a", "SHOW TRIGGERS")] == ["children_bi"]
    q(server, "a", "INSERT INTO children (parent_id, email) VALUES (1, 'NEW@X.ORG')")
    assert q(server, "a", "SELECT id, email FROM children WHERE email = 'new@x.org'")[0][0] == 500
    with pytest.raises(pymysql.err.IntegrityError):
        q(server, "a", "INSERT INTO children (parent_id, email) VALUES (999, 'orphan@x.org')")
    assert not q(server, "a", "SHOW TABLES LIKE '\\_phx\\_%'")


PETS = ("CREATE TABLE pets (id INT PRIMARY KEY, owner INT, KEY owner (owner), CONSTRAINT fk_pet_owner FOREIGN KEY "
        "(owner) REFERENCES parents (id) ON DELETE SET NULL ON UPDATE CASCADE)")


def all_shapes(server, db):
    return {t: q(server, db, f"SHOW CREATE TABLE {t}")[0][1] for (t,) in q(server, db, "SHOW TABLES")}


def table_id(server, db, t):
    return q(server, db, f"SELECT TABLE_ID FROM information_schema.INNODB_SYS_TABLES WHERE NAME = '{db}/{t}'")[0][0]


def test_a_referenced_table_is_swapped_and_the_foreign_keys_pointing_at_it_come_back(db):
    server, rules = db
    q(server, "a", PETS, "INSERT INTO pets VALUES (1, 1), (2, 2), (3, NULL)")
    before, tid = all_shapes(server, "a"), table_id(server, "a", "parents")
    anonymize(server.admin(), "a", rules, KEY)
    assert table_id(server, "a", "parents") != tid  # swapped in, not refilled
    assert all_shapes(server, "a") == before  # referencing and referenced tables alike
    assert q(server, "a", "SELECT COUNT(*) FROM parents WHERE name LIKE 'p%'")[0][0] < 50
    for sql in ("INSERT INTO pets VALUES (4, 999)", "INSERT INTO children (parent_id, email) VALUES (999, 'o@x.org')"):
        with pytest.raises(pymysql.err.IntegrityError):
            q(server, "a", sql)


def test_a_run_that_dies_mid_swap_leaves_what_the_next_run_puts_back(db, monkeypatch):
    from anonymization import rewrite

    server, rules = db
    q(server, "b", PETS)
    before = all_shapes(server, "b")
    real = rewrite._q

    def dying(conn, sql, args=None):
        if sql.startswith("RENAME TABLE `parents`"):
            raise SystemExit("killed")
        return real(conn, sql, args)

    monkeypatch.setattr(rewrite, "_q", dying)
    monkeypatch.setattr(rewrite, "recover", lambda conn: None)  # as if the process had been killed
    with pytest.raises(SystemExit):
        anonymize(server.admin(), "b", rules, KEY)
    monkeypatch.undo()
    assert "fk_pet_owner" not in all_shapes(server, "b")["pets"]  # the crash left it dropped
    anonymize(server.admin(), "b", rules, KEY)
    assert all_shapes(server, "b") == before
    with pytest.raises(pymysql.err.IntegrityError):
        q(server, "b", "INSERT INTO pets VALUES (4, 999)")
