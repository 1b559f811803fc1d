"""The free-text dictionary read from the rows' stored pseudonyms (captures joined to their
tables on the primary key, anonymization/_dictionary.py) is the dictionary computed from
the originals alone, value for value: on the shop, and where a stored value is not the
computed pseudonym (cut to the column, a unique key's collision variant, a rule's `where`)
or a capture cannot be joined (no key, a ruled key, INSERT IGNORE, another charset)."""

from __future__ import annotations

import pymysql
import pytest

from anonymization import load_rules
from anonymization._dictionary import Stored, build
from anonymization.engine import Engine
from anonymization.inline import Inline
from anonymization.rules import ColumnRule
from tasks.sources.restore import restore
from tests.anonymization.test_inline import KEY, SHOP_RULES, mysqldump
from tests.anonymization.test_rewrite import q

RULES = """
locale: [en_US, de_DE]
email_domain: example.invalid
tables:
  people:
    columns: {first: first_name, last: last_name, full_name: name, alias: name, email: email, mail: email, city: keep}
  nokey:
    columns: {name: name}
  ruledkey:
    columns: {code: hash, holder: name}
  wheres:
    columns: {name: {strategy: name, where: "id > 5"}}
  latin:
    columns: {name: name}
  notes:
    columns: {body: scrub}
"""
SCHEMA = [
    # full_name: 12 characters cut most fake names; 300 aliases collide in the unique key.
    "CREATE TABLE people (id INT PRIMARY KEY, first VARCHAR(40), last VARCHAR(40), full_name VARCHAR(12), "
    "alias VARCHAR(60), email VARCHAR(100), city VARCHAR(20), UNIQUE KEY alias (alias), "
    # LOWER folds U+10A0 here, not under the restore connection's utf8mb4_general_ci.
    "mail VARCHAR(100) COLLATE utf8mb4_uca1400_ai_ci)",
    "INSERT INTO people SELECT seq, CONCAT('Firstname', seq), IF(seq MOD 7 = 0, NULL, CONCAT('Lastname', seq)), "
    "CONCAT('Person ', seq), CONCAT('Alias ', seq), IF(seq MOD 3 = 0, CONCAT('ÉVA', seq, '@Zürich.example'), CONCAT('p', seq, '@x.org')), "
    "'Bern', CONCAT(_utf8mb4 0xE182A0, seq, '@x.org') FROM seq_1_to_300",
    "CREATE TABLE nokey (name VARCHAR(50))",
    "INSERT INTO nokey SELECT CONCAT('Nokey Name ', seq) FROM seq_1_to_50",
    "CREATE TABLE ruledkey (code VARCHAR(64) PRIMARY KEY, holder VARCHAR(50))",
    "INSERT INTO ruledkey SELECT CONCAT('K', seq), CONCAT('Holder Name ', seq) FROM seq_1_to_50",
    "CREATE TABLE wheres (id INT PRIMARY KEY, name VARCHAR(50))",
    "INSERT INTO wheres SELECT seq, CONCAT('Where Name ', seq) FROM seq_1_to_50",
    "CREATE TABLE latin (id INT PRIMARY KEY, name VARCHAR(50) CHARACTER SET latin1)",
    "INSERT INTO latin SELECT seq, CONCAT('Latin Näme ', seq) FROM seq_1_to_50",
    "CREATE TABLE notes (id INT PRIMARY KEY, body TEXT)",
    "INSERT INTO notes VALUES (1, 'Firstname1 Lastname1 wrote')",
]


def restored(server, dump, db: str, rules) -> Inline:
    q(server, None, f"CREATE DATABASE `{db}`")
    il = Inline(server.admin(), db, rules, KEY)
    restore(str(dump), server.admin(), db, jobs=2, inline=il)
    return il


def both_ways(server, db: str, rules, il: Inline, keys_first: bool = False):
    """The dictionary computed and read from the rows; `keys_first`: after the held-back
    keys are added (colliding pseudonyms made distinct), as the side session may do."""
    conns = [pymysql.connect(**server.admin().pymysql_kwargs(), database=db, autocommit=True) for _ in range(2)]
    try:
        eng = Engine(conns, rules, KEY, inlined=il.done)
        eng.prepare()
        if keys_first:
            for trule in rules.tables.values():
                if eng.keys_only(trule):
                    eng.table(trule, lambda *_: None)
        stored = Stored(il.done.text_keys, il.done.keys)

        def dictionary(s: Stored | None):
            compute = lambda strategy, v: eng._expr(ColumnRule(strategy), v)  # noqa: E731
            return build(conns, rules, eng.schema, compute, il.done.texts, il.done.tables, stored=s)

        joined = stored.readings(conns[0], rules, eng.schema, il.done.texts, lambda s, v: v)
        return dictionary(None), dictionary(stored), joined
    finally:
        for c in conns:
            c.close()


def test_the_shop_dictionary_read_from_the_rows_is_the_computed_one(mariadb, shop_dump):
    rules = load_rules(SHOP_RULES)
    il = restored(mariadb, shop_dump, "shop", rules)
    computed, stored, joined = both_ways(mariadb, "shop", rules, il)
    assert len(computed) > 1000 and stored == computed
    # Every captured table is joined, on its key, for every column the dictionary reads.
    assert set(joined) == set(il.done.texts) == {"customers", "addresses", "orders", "payments",
                                                 "newsletter_subscribers"}
    assert set(joined["customers"].stored) == {"first_name", "last_name", "email", "phone"}
    assert all(r.keys == ["id"] for r in joined.values())


@pytest.mark.parametrize("keys_first", [False, True], ids=["keys-held", "keys-added"])
def test_stored_values_that_are_not_the_computed_pseudonym_are_computed(mariadb, tmp_path, keys_first):
    (tmp_path / "rules.yaml").write_text(RULES)
    rules = load_rules(tmp_path / "rules.yaml")
    q(mariadb, None, "CREATE DATABASE src")
    q(mariadb, "src", *SCHEMA)
    il = restored(mariadb, mysqldump(mariadb, tmp_path / "edge.sql", "src"), "edge", rules)
    computed, stored, joined = both_ways(mariadb, "edge", rules, il, keys_first)
    assert len(computed) > 1200 and stored == computed
    # Joined where a key is captured; cut and (once the keys are added) variant values exist.
    assert set(il.done.text_keys) == {"people", "wheres", "latin"} and set(joined) == {"people"}
    assert set(joined["people"].stored) == {"first", "last", "full_name", "alias", "email", "mail"}
    cut, variants = q(mariadb, "edge", "SELECT SUM(CHAR_LENGTH(full_name) = 12), SUM(alias LIKE '%~%') FROM people")[0]
    assert cut > 0 and (variants > 0) == keys_first


def test_a_dump_with_insert_ignore_is_not_joined(mariadb, tmp_path):
    """INSERT IGNORE may skip a row whose key another row has: its capture would join that row."""
    (tmp_path / "rules.yaml").write_text(RULES)
    rules = load_rules(tmp_path / "rules.yaml")
    q(mariadb, None, "CREATE DATABASE src")
    q(mariadb, "src", *SCHEMA)
    il = restored(mariadb, mysqldump(mariadb, tmp_path / "edge.sql", "--insert-ignore", "src"), "ign", rules)
    computed, stored, joined = both_ways(mariadb, "ign", rules, il)
    assert il.done.texts and not il.done.text_keys and not joined
    assert len(computed) > 600 and stored == computed
