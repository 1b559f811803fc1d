"""Rows anonymized on their way in (anonymization/inline.py) end up exactly as a rewrite
after the restore leaves them; the gate still sees the originals it needs; no original
and no key material is left behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from anonymization import anonymize, load_rules, run_gate, take_baseline
from anonymization.inline import Inline, originals
from anonymization.keyed import pads
from tasks.sources._parallel import statements
from tasks.sources.restore import restore
from tests.anonymization.test_rewrite import RULES as MEMBER_RULES
from tests.anonymization.test_rewrite import SCHEMA as MEMBER_SCHEMA
from tests.anonymization.test_rewrite import q

SHOP_RULES = Path(__file__).resolve().parents[2] / "anonymization" / "rules" / "shop.yaml"
KEY = b"test-key-0123456789abcdef-0123456789"


def tables(server, db) -> list[str]:
    return [r[0] for r in q(server, db, "SHOW FULL TABLES WHERE Table_type = 'BASE TABLE'")]


def contents(server, db) -> dict:
    """Every table's definition and rows (ordered by primary key)."""
    return {t: (q(server, db, f"SHOW CREATE TABLE `{t}`")[0][1], q(server, db, f"SELECT * FROM `{t}` ORDER BY 1"))
            for t in tables(server, db)}


def mysqldump(server, path: Path, *args: str) -> Path:
    """A real mysqldump of the server's database(s) named in args."""
    with open(path, "wb") as out:
        subprocess.run(["mysqldump", *server.admin().client_args(), *args], stdout=out, check=True,
                       env={**os.environ, **server.admin().client_env()})
    return path


def breed_like(server, dump: Path, db: str, rules, inline: bool, jobs: int = 2):
    """The cycle's restore + anonymize steps, either way; returns the baseline and what was inlined."""
    q(server, None, f"CREATE DATABASE `{db}`")
    admin = server.admin()
    il = Inline(admin, db, rules, KEY) if inline else None
    restore(str(dump), admin, db, jobs=jobs, inline=il)
    baseline = take_baseline(admin, db, rules, KEY, originals(il.samples) if il else None)
    if il:
        il.drop_samples()
    anonymize(admin, db, rules, KEY, workers=2, inlined=il.done if il else None)
    return baseline, il


def test_the_shop_anonymized_inline_equals_the_rewrite_after_the_restore(mariadb, shop_dump):
    rules = load_rules(SHOP_RULES)
    base_post, _ = breed_like(mariadb, shop_dump, "post", rules, inline=False)
    base_inl, il = breed_like(mariadb, shop_dump, "inl", rules, inline=True)
    # Every set-based table went through the restore; the others (scrub only, keep only) did not.
    assert il.done.tables == {"customers", "addresses", "orders", "payments", "newsletter_subscribers",
                              "login_events"}
    assert "customers" in il.done.keys and any(d.startswith("UNIQUE KEY") for d in il.done.keys["customers"])
    post, inl = contents(mariadb, "post"), contents(mariadb, "inl")
    assert inl == post  # same rows, same pseudonyms, same definitions (keys, foreign keys)
    assert not [t for t in tables(mariadb, "inl") if t.startswith("_phx")]
    # The baseline read the originals from the samples: as many values as from the tables.
    assert base_inl.counts == base_post.counts and len(base_inl.hashes) >= 0.8 * len(base_post.hashes)
    assert run_gate(mariadb.admin(), "inl", rules, KEY, base_inl).passed


def test_an_original_left_in_an_inlined_table_fails_the_gate(mariadb, shop_dump):
    """The baseline of an inlined table comes from the sample of its original rows: an
    original put back after the restore is found."""
    rules = load_rules(SHOP_RULES)
    q(mariadb, None, "CREATE DATABASE leak")
    admin = mariadb.admin()
    il = Inline(admin, "leak", rules, KEY)
    restore(str(shop_dump), admin, "leak", jobs=2, inline=il)
    assert "_phx_orig_customers" in il.samples
    baseline = take_baseline(admin, "leak", rules, KEY, originals(il.samples))
    q(mariadb, "leak", "UPDATE customers c JOIN _phx_orig_customers o ON o.id = c.id SET c.phone = o.phone")
    il.drop_samples()
    anonymize(admin, "leak", rules, KEY, workers=2, inlined=il.done)
    result = run_gate(admin, "leak", rules, KEY, baseline)
    assert any("survive in customers.phone" in f for f in result.findings), result.findings


def test_colliding_pseudonyms_in_a_unique_key_are_resolved_as_in_a_rewrite(mariadb, tmp_path):
    """A real mysqldump of a table whose three spellings of one address share a pseudonym:
    its unique key is held back by the restore and added by the engine, resolving them."""
    (tmp_path / "rules.yaml").write_text(MEMBER_RULES)
    rules = load_rules(tmp_path / "rules.yaml")
    q(mariadb, None, "CREATE DATABASE src")
    q(mariadb, "src", *MEMBER_SCHEMA)
    dump = mysqldump(mariadb, tmp_path / "members.sql", "src")
    q(mariadb, None, "CREATE DATABASE post")
    q(mariadb, "post", *MEMBER_SCHEMA)
    anonymize(mariadb.admin(), "post", rules, KEY, workers=2)
    _, il = breed_like(mariadb, dump, "inl", rules, inline=True, jobs=1)
    assert il.done.tables == {"members", "parents", "children"} and "members" in il.done.keys
    assert contents(mariadb, "inl") == contents(mariadb, "post")
    emails = q(mariadb, "inl", "SELECT email FROM members WHERE id IN (2, 7, 8) ORDER BY id")
    assert len({e for (e,) in emails}) == 3
    assert q(mariadb, "inl", "SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = 'inl'")[0][0] == 1


def test_the_statements_carry_no_key_material(mariadb, shop_dump):
    """The family keys reach the restore connections as parameters only: no statement
    the restore runs (or could quote in an error) holds a pad."""
    import zstandard

    rules = load_rules(SHOP_RULES)
    q(mariadb, None, "CREATE DATABASE k")
    il = Inline(mariadb.admin(), "k", rules, KEY)
    init = il.open()
    try:
        secrets = {p for k in il._engine.keys.values() for p in pads(k)}
        q(mariadb, "k", "CREATE TABLE customers (id INT PRIMARY KEY, first_name VARCHAR(64), last_name VARCHAR(64), "
                        "email VARCHAR(191), phone VARCHAR(32), birth_date DATE, locale CHAR(5), profile JSON, "
                        "loyalty_points INT, created_at DATETIME)")
        sql = zstandard.ZstdDecompressor().decompressobj().decompress(shop_dump.read_bytes())
        head = [(n, s) for n, s in statements(iter([sql])) if s.startswith(b"INSERT INTO `customers`")][:1] * 2
        out = list(il.wrap(iter(head)))
    finally:
        il.close()
    assert {a for _, args in init for a in args} == secrets  # the pads travel as parameters
    # The first INSERT is also sampled as it came; the second is only rewritten.
    main = [(n, s) for n, s in out if b"_phx_text_" not in s]
    assert len(main) == 4 and main[0][1].startswith(b"CREATE TABLE `_phx_orig_customers` LIKE")
    assert main[1][1] == head[0][1].replace(b"`customers`", b"`_phx_orig_customers`", 1) and main[2][1] == main[3][1]
    assert b"WITH _phx_rows(" in main[2][1] and b"@phx_email_i" in main[2][1]
    # Each is followed by the capture of the originals the free-text scrub needs, as they came.
    captures = [s for _, s in out if s.startswith(b"INSERT INTO `_phx_text_customers`")]
    assert len(captures) == 2 and all(b"@phx_" not in c and c.endswith(b"FROM _phx_rows") for c in captures)
    assert all(p not in stmt and p.hex().encode() not in stmt.lower() for _, stmt in out for p in secrets)


def test_a_dump_that_names_its_databases_is_inlined_into_them_as_a_rewrite_would(mariadb, tmp_path):
    """A dump with `USE src` restores into `src`, not the configured database, and its rows
    are pseudonymized on the way in there: the same result as a rewrite after the restore.
    (Before, inline anonymization was silently off for such dumps.)"""
    (tmp_path / "rules.yaml").write_text(MEMBER_RULES)
    rules = load_rules(tmp_path / "rules.yaml")
    q(mariadb, None, "CREATE DATABASE src")
    q(mariadb, "src", *MEMBER_SCHEMA)
    dump = mysqldump(mariadb, tmp_path / "named.sql", "--databases", "src")
    admin = mariadb.admin()
    results = {}
    for inline in (False, True):
        q(mariadb, None, "DROP DATABASE src")
        il = Inline(admin, "app", rules, KEY) if inline else None
        report = restore(str(dump), admin, "app", jobs=2, inline=il)
        assert report.databases == ["src"] and report.database is None
        samples = il.samples_in("src") if il else set()
        take_baseline(admin, "src", rules, KEY, originals(samples) if samples else None)
        if il:
            il.drop_samples("src")
        anonymize(admin, "src", rules, KEY, workers=2, inlined=il.done_in("src") if il else None)
        results[inline] = contents(mariadb, "src"), (il.done_in("src").tables if il else set())
    assert results[True][1] and results[True][1] <= {"members", "parents", "children"}
    assert results[True][0] == results[False][0]
    assert not q(mariadb, None, "SHOW DATABASES LIKE 'app'")  # nothing went to the configured one
