"""Anonymization on the generated shop database in a real MariaDB."""

from __future__ import annotations

import json
from pathlib import Path

import pymysql
import pytest

from anonymization import GateFailed, RulesError, anonymize, load_rules, run_gate, take_baseline
from tasks.sources.restore import restore

RULES = Path(__file__).resolve().parents[2] / "anonymization" / "rules" / "shop.yaml"
KEY = b"test-key-0123456789abcdef-0123456789"


@pytest.fixture
def shop(mariadb, shop_dump):
    """A fresh server with the original shop database `app`."""
    restore(str(shop_dump), mariadb.admin(), "app")
    return mariadb


def q(server, sql, db="app"):
    conn = pymysql.connect(**server.admin().pymysql_kwargs(), database=db, autocommit=True)
    with conn.cursor() as cur:
        cur.execute(sql)
        rows = cur.fetchall()
    conn.close()
    return rows


def snapshot(server) -> dict:
    return {t: q(server, f"SELECT * FROM `{t}` ORDER BY id") for t in
            ("customers", "orders", "newsletter_subscribers", "support_tickets", "payments", "login_events", "addresses")}


def test_deterministic_per_key_and_different_with_another_key(shop, mariadb, shop_dump, tmp_path):
    rules = load_rules(RULES)
    anonymize(shop.admin(), "app", rules, KEY)
    first = snapshot(shop)
    for db, key in (("again", KEY), ("other", b"another-key-0123456789abcdef")):
        q(shop, f"CREATE DATABASE {db}")
        restore(str(shop_dump), shop.admin(), db)
        anonymize(shop.admin(), db, rules, key)
        conn_rows = {t: q(shop, f"SELECT * FROM `{t}` ORDER BY id", db) for t in first}
        if db == "again":
            assert conn_rows == first
        else:
            assert conn_rows["customers"] != first["customers"]


def test_consistent_across_tables_and_inside_text(shop):
    pairs_before = q(shop, "SELECT c.id, n.id FROM customers c JOIN newsletter_subscribers n ON n.email = c.email ORDER BY 1")
    orders_before = q(shop, "SELECT o.id FROM orders o JOIN customers c ON c.email = o.customer_email ORDER BY 1")
    ticket_mail = q(shop, "SELECT t.id, c.id FROM support_tickets t JOIN customers c ON t.body LIKE CONCAT('%', c.email, '%') "
                          "ORDER BY 1, 2 LIMIT 50")
    anonymize(shop.admin(), "app", load_rules(RULES), KEY)
    assert q(shop, "SELECT c.id, n.id FROM customers c JOIN newsletter_subscribers n ON n.email = c.email ORDER BY 1") == pairs_before
    assert q(shop, "SELECT o.id FROM orders o JOIN customers c ON c.email = o.customer_email ORDER BY 1") == orders_before
    for tid, cid in ticket_mail:
        email = q(shop, f"SELECT email FROM customers WHERE id = {cid}")[0][0]
        assert email.endswith("@example.invalid")
        assert email in q(shop, f"SELECT body FROM support_tickets WHERE id = {tid}")[0][0]


def test_unique_types_lengths_nulls_fks_json(shop):
    nulls_before = q(shop, "SELECT COUNT(*) FROM customers WHERE phone IS NULL")[0][0]
    cols_before = q(shop, "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
                          "WHERE TABLE_SCHEMA = 'app' ORDER BY 1, 2")
    anonymize(shop.admin(), "app", load_rules(RULES), KEY)
    assert q(shop, "SELECT COUNT(*) - COUNT(DISTINCT email) FROM customers")[0][0] == 0
    assert q(shop, "SELECT COUNT(*) FROM customers WHERE phone IS NULL")[0][0] == nulls_before
    assert q(shop, "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
                   "WHERE TABLE_SCHEMA = 'app' ORDER BY 1, 2") == cols_before
    assert q(shop, "SELECT COUNT(*) FROM customers WHERE JSON_VALID(profile) = 0")[0][0] == 0
    prof = [json.loads(p) for (p,) in q(shop, "SELECT profile FROM customers WHERE JSON_EXTRACT(profile, '$.secondary_email') "
                                             "IS NOT NULL AND JSON_TYPE(JSON_EXTRACT(profile, '$.secondary_email')) <> 'NULL' LIMIT 20")]
    assert prof and all(p["secondary_email"].endswith("@example.invalid") for p in prof)
    assert all("preferences" in p for p in prof)  # untouched paths survive
    assert q(shop, "SELECT COUNT(*) FROM orders o LEFT JOIN customers c ON c.id = o.customer_id WHERE c.id IS NULL")[0][0] == 0
    assert q(shop, "SELECT COUNT(*) FROM customers WHERE email NOT LIKE '%@example.invalid'")[0][0] == 0
    assert len(q(shop, "SHOW TRIGGERS")) == 1  # saved and restored, not lost


def test_truncate_and_delete_where(shop, tmp_path):
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES.read_text().replace(
        "  login_events:\n", "  login_events:\n    truncate: true\n").replace(
        "  support_tickets:\n", "  support_tickets:\n    delete_where: \"customer_id IS NULL\"\n"))
    anonymize(shop.admin(), "app", load_rules(rules_file), KEY)
    assert q(shop, "SELECT COUNT(*) FROM login_events")[0][0] == 0
    assert q(shop, "SELECT COUNT(*) FROM support_tickets WHERE customer_id IS NULL")[0][0] == 0
    assert q(shop, "SELECT COUNT(*) FROM support_tickets")[0][0] > 0


def test_the_before_hook_sees_every_original(shop):
    """The cycle takes the gate's baseline in `before`, beside the held-key builds: it must
    run exactly once and before any table is rewritten."""
    originals = q(shop, "SELECT id, email FROM customers ORDER BY id")
    seen = []
    anonymize(shop.admin(), "app", load_rules(RULES), KEY,
              before=lambda: seen.append(q(shop, "SELECT id, email FROM customers ORDER BY id")))
    assert seen == [originals]
    assert q(shop, "SELECT id, email FROM customers ORDER BY id") != originals


def test_gate_passes_on_a_correct_run_and_fails_on_a_planted_leak(shop):
    rules = load_rules(RULES)
    originals = [e for (e,) in q(shop, "SELECT email FROM customers")]
    baseline = take_baseline(shop.admin(), "app", rules, KEY)
    assert not run_gate(shop.admin(), "app", rules, KEY, baseline).passed  # before: everything is original
    anonymize(shop.admin(), "app", rules, KEY)
    ok = run_gate(shop.admin(), "app", rules, KEY, baseline)
    assert ok.passed and ok.checked_values > 100
    # originals planted back after anonymization, in a column the rules call `keep`
    conn = pymysql.connect(**shop.admin().pymysql_kwargs(), database="app", autocommit=True)
    with conn.cursor() as cur:
        cur.executemany("UPDATE products SET name = %s WHERE id = %s", [(e, i + 1) for i, e in enumerate(originals[:200])])
    conn.close()
    res = run_gate(shop.admin(), "app", rules, KEY, baseline)
    assert not res.passed
    assert any("survive in products.name" in f for f in res.findings)
    with pytest.raises(GateFailed, match="products.name"):
        res.raise_if_failed()
    assert not any(e in str(res.findings) for e in originals)  # findings never show the values


def test_gate_fails_on_an_unruled_pii_column(shop, tmp_path):
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES.read_text().replace("      phone: phone\n", ""))
    rules = load_rules(rules_file)
    res = run_gate(shop.admin(), "app", rules, KEY, None)
    assert not res.passed and any("customers.phone" in f and "phone" in f for f in res.findings)


@pytest.mark.parametrize("mutation, message", [
    (("email: email", "email: emial"), "unknown strategy 'emial'"),
    (("      street: street", "      streat: street"), "column 'streat' does not exist"),
    (("  payments:", "  paymnts:"), "table 'paymnts' does not exist"),
    (("tables:", "tables: [oops"), "not valid YAML"),
])
def test_a_rules_typo_names_it_and_changes_nothing(shop, tmp_path, mutation, message):
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES.read_text().replace(*mutation, 1))
    before = snapshot(shop)
    with pytest.raises(RulesError, match=message) as err:
        anonymize(shop.admin(), "app", load_rules(rules_file), KEY)
    assert str(rules_file) in str(err.value)
    assert snapshot(shop) == before


def test_gate_cli_samples_the_original_dump(shop, shop_dump):
    """`phoenix gate --source DUMP` outside the cycle: originals sampled from the dump."""
    from tests.conftest import run_phoenix

    dsn = f"mysql://root@localhost/app?unix_socket={shop.socket}"
    env = {"PHOENIX_ANON_KEY": KEY.decode()}
    before = run_phoenix("gate", "--dsn", dsn, "--rules", str(RULES), "--source", str(shop_dump), env=env)
    assert before.returncode == 4 and "survive" in before.stdout  # nothing anonymized yet
    anonymize(shop.admin(), "app", load_rules(RULES), KEY)
    after = run_phoenix("gate", "--dsn", dsn, "--rules", str(RULES), "--source", str(shop_dump), env=env)
    assert after.returncode == 0, after.stdout[-1500:] + after.stderr[-1500:]


def test_originals_left_inside_free_text_fail_the_gate(shop, tmp_path):
    """Ticket bodies quote customers' e-mails: with the body kept instead of scrubbed, the
    sampled customer e-mails are found inside the text (the keyed-CRC prefilter then HMAC)."""
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(RULES.read_text().replace("      body: scrub\n", "      body: keep\n"))
    rules = load_rules(rules_file)
    baseline = take_baseline(shop.admin(), "app", rules, KEY)
    anonymize(shop.admin(), "app", rules, KEY)
    found = [f for f in run_gate(shop.admin(), "app", rules, KEY, baseline).findings if "inside" in f]
    assert found and all("survive inside support_tickets.body: " in f for f in found)
