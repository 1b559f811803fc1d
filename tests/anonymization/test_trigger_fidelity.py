"""A trigger re-created after its table is swapped (anonymization/rewrite.py) keeps what it
was created with: its sql_mode, character_set_client, collation_connection and DEFINER —
also when an interrupted swap is recovered. The source is a real mariadb-dump."""

from __future__ import annotations

import pymysql

from anonymization import anonymize, load_rules
from tasks.sources.restore import restore
from tests.anonymization.test_inline import mysqldump
from tests.anonymization.test_rewrite import q

KEY = b"test-key-0123456789abcdef-0123456789"
MODE = "STRICT_ALL_TABLES,NO_ZERO_DATE,TRADITIONAL"
ATTRS = ("SELECT TRIGGER_NAME, SQL_MODE, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, DEFINER, ACTION_STATEMENT "
         "FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() ORDER BY 1")


def _source(server, tmp_path):
    """A table with two triggers made in sessions unlike the engine's, dumped and restored."""
    q(server, None, "CREATE DATABASE src", "CREATE USER 'reporting'@'%'", "GRANT ALL ON src.* TO 'reporting'@'%'",
      "GRANT ALL ON app.* TO 'reporting'@'%'")
    q(server, "src", "CREATE TABLE people (id INT PRIMARY KEY, email VARCHAR(100), note VARCHAR(40))",
      "INSERT INTO people SELECT seq, CONCAT('p', seq, '@x.org'), 'x' FROM seq_1_to_50")
    conn = pymysql.connect(**server.admin().pymysql_kwargs(), database="src", autocommit=True, charset="utf8mb3")
    with conn.cursor() as cur:
        cur.execute(f"SET SESSION sql_mode = '{MODE}'")
        cur.execute("CREATE DEFINER = 'reporting'@'%' TRIGGER people_bi BEFORE INSERT ON people FOR EACH ROW "
                    "SET NEW.note = 'Grüße'")
    conn.close()
    conn = pymysql.connect(**server.admin().pymysql_kwargs(), database="src", autocommit=True, charset="latin1")
    with conn.cursor() as cur:  # "note" is a column only under ANSI_QUOTES
        cur.execute("SET SESSION sql_mode = 'ANSI_QUOTES,NO_ENGINE_SUBSTITUTION'")
        cur.execute("""CREATE TRIGGER people_bu BEFORE UPDATE ON people FOR EACH ROW SET NEW."note" = 'café'""")
    conn.close()
    dump = mysqldump(server, tmp_path / "src.sql", "--triggers", "src")
    q(server, None, "CREATE DATABASE app")
    restore(str(dump), server.admin(), "app", jobs=2)
    (tmp_path / "rules.yaml").write_text("tables:\n  people:\n    columns: {email: email, note: keep}\n")
    return load_rules(tmp_path / "rules.yaml")


def test_triggers_keep_their_session_and_definer_through_the_swap(mariadb, tmp_path):
    rules = _source(mariadb, tmp_path)
    before = q(mariadb, "app", ATTRS)
    modes = [set(r[1].split(",")) for r in before]  # the dump kept them
    assert {"STRICT_ALL_TABLES", "NO_ZERO_DATE", "TRADITIONAL"} <= modes[0] and "ANSI_QUOTES" in modes[1]
    assert [r[2] for r in before] == ["utf8mb3", "latin1"] and before[0][4] == "reporting@%"
    report = anonymize(mariadb.admin(), "app", rules, KEY, workers=2)
    assert report.rows["people"] == 50
    assert not any(e.startswith("p") and e.endswith("@x.org") for (e,) in q(mariadb, "app", "SELECT email FROM people"))
    assert q(mariadb, "app", ATTRS) == before
    q(mariadb, "app", "INSERT INTO people (id, email) VALUES (99, 'n@x.org')")
    assert q(mariadb, "app", "SELECT note FROM people WHERE id = 99") == (("Grüße",),)
    q(mariadb, "app", "UPDATE people SET id = 100 WHERE id = 99")
    assert q(mariadb, "app", "SELECT note FROM people WHERE id = 100") == (("café",),)


def test_a_recovered_swap_puts_the_triggers_back_in_their_session(mariadb, tmp_path):
    from anonymization.rewrite import record, recover

    _source(mariadb, tmp_path)
    before = q(mariadb, "app", ATTRS)
    conn = pymysql.connect(**mariadb.admin().pymysql_kwargs(), database="app", autocommit=True, charset="utf8mb4")
    try:
        record(conn, "people")  # what a swap writes down before it takes anything away …
        with conn.cursor() as cur:  # … then dies after dropping the triggers
            cur.execute("DROP TRIGGER people_bi")
            cur.execute("DROP TRIGGER people_bu")
        recover(conn)
    finally:
        conn.close()
    assert q(mariadb, "app", ATTRS) == before
    assert not q(mariadb, "app", "SHOW TABLES LIKE '\\_phx\\_pending'")
