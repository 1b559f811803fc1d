"""Known originals inside free text (freetext.py): ticket bodies quote their customer's full
name; after anonymizing, the body holds that customer's fake name instead, on the inline
restore path and on the post-restore path, and the gate finds a name the scrub skipped."""

from __future__ import annotations

import re

import pymysql
import pytest

from anonymization import GateFailed, anonymize, load_rules, run_gate, take_baseline
from anonymization.inline import Inline, originals
from tasks.sources.restore import restore
from tests.anonymization.test_inline import KEY, SHOP_RULES
from tests.anonymization.test_rewrite import q


def breed(server, dump, db: str, rules, inline: bool):
    """Restore + baseline + anonymize as the cycle does; the baseline excludes what the scrub wrote."""
    q(server, None, f"CREATE DATABASE `{db}`")
    admin = server.admin()
    il = Inline(admin, db, rules, KEY) if inline else None
    restore(str(dump), admin, db, jobs=2, inline=il)
    baseline = take_baseline(admin, db, rules, KEY, originals(il.samples) if il else None)
    if il:
        il.drop_samples()
    report = anonymize(admin, db, rules, KEY, workers=2, inlined=il.done if il else None)
    baseline.exclude(report.written)
    return baseline, report


def full_names(server, db: str) -> dict[int, str]:
    return {cid: f"{f} {la}" for cid, f, la in q(server, db, "SELECT id, first_name, last_name FROM customers")}


def tickets(server, db: str) -> dict[int, tuple[int | None, str]]:
    return {tid: (cid, body) for tid, cid, body in q(server, db, "SELECT id, customer_id, body FROM support_tickets")}


def words(values) -> re.Pattern:
    """Any of the values as a whole word sequence (longest first)."""
    alts = "|".join(re.escape(v) for v in sorted(set(values), key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alts})(?!\w)")


@pytest.fixture
def originals_of(mariadb, shop_dump):
    """The shop's original full names and ticket bodies (a plain restore into `src`)."""
    q(mariadb, None, "CREATE DATABASE src")
    restore(str(shop_dump), mariadb.admin(), "src")
    return full_names(mariadb, "src"), tickets(mariadb, "src")


@pytest.mark.parametrize("inline", [False, True], ids=["post-restore", "inline"])
def test_a_customers_name_in_a_ticket_becomes_the_same_customers_fake_name(mariadb, shop_dump, originals_of, inline):
    names, before = originals_of
    quoted = {t for t, (cid, body) in before.items() if cid and names[cid] in body}
    assert len(quoted) > len(before) // 2  # the generator quotes the customer's own name
    rules = load_rules(SHOP_RULES)
    baseline, report = breed(mariadb, shop_dump, "anon", rules, inline)
    fakes, after = full_names(mariadb, "anon"), tickets(mariadb, "anon")
    assert not [t for t, (cid, body) in after.items() if cid and names[cid] in body]
    missing = [t for t in quoted if fakes[after[t][0]] not in after[t][1]]
    assert not missing, f"{len(missing)} of {len(quoted)} bodies lack their customer's fake name"
    # No other customer's original full name either, unless the scrub wrote it as a pseudonym.
    anyone = words(names.values())
    leaked = [m for _, body in after.values() for m in anyone.findall(body) if m not in report.written]
    assert not leaked, f"{len(leaked)} original full names left in ticket bodies"
    assert report.written and not [t for t in q(mariadb, "anon", "SHOW TABLES") if t[0].startswith("_phx")]
    assert run_gate(mariadb.admin(), "anon", rules, KEY, baseline).passed


def test_a_name_the_scrub_skipped_fails_the_gate(mariadb, shop_dump, monkeypatch):
    monkeypatch.setenv("PHOENIX_FAULT_SCRUB_SKIP_NAMES", "1")
    rules = load_rules(SHOP_RULES)
    baseline, _ = breed(mariadb, shop_dump, "skip", rules, inline=True)
    result = run_gate(mariadb.admin(), "skip", rules, KEY, baseline)
    assert any("full name" in f and "survive inside support_tickets.body: " in f for f in result.findings), \
        result.findings
    with pytest.raises(GateFailed, match="support_tickets.body") as err:
        result.raise_if_failed()
    assert err.value.exit_code == 4


def _table_id(server, db: str, table: str) -> int:
    return q(server, "information_schema",
             f"SELECT TABLE_ID FROM INNODB_SYS_TABLES WHERE NAME = '{db}/{table}'")[0][0]


@pytest.mark.parametrize("in_place", [False, True], ids=["rewrite", "fault-in-place"])
def test_the_scrub_and_delete_where_rewrite_the_table_instead_of_updating_it(mariadb, shop_dump, tmp_path,
                                                                             monkeypatch, in_place):
    """An UPDATE or DELETE in place leaves the original rows in undo logs and free space:
    the scrubbed table (and a `delete_where` table) is a new copy; the fault switch keeps
    the old in-place path for the forensic gate's test."""
    if in_place:
        monkeypatch.setenv("PHOENIX_FAULT_SCRUB_IN_PLACE", "1")
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(SHOP_RULES.read_text().replace(
        "  products:\n", "  products:\n    delete_where: \"id > 5\"\n"))
    restore(str(shop_dump), mariadb.admin(), "app")
    ids = {t: _table_id(mariadb, "app", t) for t in ("support_tickets", "products")}
    anonymize(mariadb.admin(), "app", load_rules(rules_file), KEY, workers=2)
    assert q(mariadb, "app", "SELECT COUNT(*) FROM products")[0][0] == 5
    same = {t for t, i in ids.items() if _table_id(mariadb, "app", t) == i}
    assert same == ({"support_tickets", "products"} if in_place else set())


@pytest.mark.parametrize("in_place", [False, True], ids=["rewrite", "fault-in-place"])
def test_the_forensic_scan_finds_the_leftovers_of_an_in_place_scrub(tmp_path, shop_dump, monkeypatch, in_place):
    """The bytes of the scrubbed table's file: after an UPDATE in place its pages still hold
    original bodies (the replaced records' space); after the rewrite they do not. Breeders now
    also zero a replaced record's space at once (innodb_immediate_scrub_data_uncompressed, for
    the incremental apply's deletes): switched off here, so the scan is what is tested."""
    from tasks.runtime.mariadb import MariaDBServer, free_port

    mariadb = MariaDBServer(tmp_path / "data", tmp_path / "run", free_port(), "restore")
    mariadb.initialize()
    mariadb.start(extra_args=["--innodb-immediate-scrub-data-uncompressed=OFF"])
    mariadb.wait_ready()
    try:
        _scan_after_scrub(mariadb, shop_dump, monkeypatch, in_place)
    finally:
        mariadb.stop()


def _scan_after_scrub(mariadb, shop_dump, monkeypatch, in_place) -> None:
    from anonymization.forensic import scan
    from tasks.storage.base import Extent

    restore(str(shop_dump), mariadb.admin(), "app")
    rules = load_rules(SHOP_RULES)
    baseline = take_baseline(mariadb.admin(), "app", rules, KEY)
    if in_place:
        monkeypatch.setenv("PHOENIX_FAULT_SCRUB_IN_PLACE", "1")
    baseline.exclude(anonymize(mariadb.admin(), "app", rules, KEY, workers=2).written)
    conn = pymysql.connect(**mariadb.admin().pymysql_kwargs(), database="app", autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("FLUSH TABLES support_tickets FOR EXPORT")  # its pages on disk, as a reader finds them
            data = (mariadb.datadir / "app" / "support_tickets.ibd").read_bytes()
            cur.execute("UNLOCK TABLES")
    finally:
        conn.close()
    result = scan([Extent("support_tickets.ibd", 0, data)], baseline.needles, target="app")
    assert bool(result.findings) == in_place, [str(f) for f in result.findings[:5]]


def test_matches_are_whole_words_leftmost_longest():
    from anonymization.freetext import TextDictionary

    d = TextDictionary()
    for original, fake in (("Anne Lee", "F1"), ("Anne Leroy", "F2"), ("Lee Roy", "F3"), ("ada@x.com", "e@example.invalid")):
        d.add(original, fake)
    text = "Anne Leroy, Annette Lee, Anne Lee. ada@x.com; bob.ada@x.com, ada@x.com.au"
    assert d.replace(text, str.upper) == "F2, ANNETTE LEE, F1. e@example.invalid; BOB.ADA@X.COM, ADA@X.COM.AU"
    assert d.written == {"F1", "F2", "e@example.invalid"} and "Anne" not in repr(d)


def test_an_original_inside_a_dictionary_entry_is_no_needle():
    """The byte scan cannot tell the original "rue de Lyon" from the pseudonym "20, rue de Lyon"."""
    from anonymization.forensic import Needles

    n = Needles()
    n.add("rue de Lyon", "addresses.street")
    n.add("Große Straße 5", "addresses.street")  # stored as UTF-8 and as Latin-1
    assert n.discard_inside(["20, rue de Lyon", "Anna"]) == 1 and len(n) == 2


def test_names_that_differ_only_in_case_or_accents_are_each_replaced(mariadb, shop_dump):
    """The tables' collations are case- and accent-insensitive: a DISTINCT that followed them
    kept one of "Clément Durand"/"Clement Durand" and left the other in the texts."""
    restore(str(shop_dump), mariadb.admin(), "app")
    variants = ["Clément Durand", "Clement Durand", "CLEMENT DURAND", "Zoë Kovač", "Zoe Kovac"]
    for cid, full in enumerate(variants, start=1):
        first, last = full.split(" ")
        q(mariadb, "app", f"UPDATE customers SET first_name = '{first}', last_name = '{last}' WHERE id = {cid}")
        q(mariadb, "app", f"UPDATE support_tickets SET body = 'Hello, this is {full}.' WHERE id = {cid}")
    report = anonymize(mariadb.admin(), "app", load_rules(SHOP_RULES), KEY, workers=2)
    bodies = [b for (b,) in q(mariadb, "app", "SELECT body FROM support_tickets WHERE id <= 5")]
    left = [v for v in variants if any(v in b for b in bodies) and v not in report.written]
    assert not left, f"{len(left)} of {len(variants)} spellings survive"
