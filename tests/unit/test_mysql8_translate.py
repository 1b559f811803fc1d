"""The MySQL 8 translation as pure functions (no server): rules, and the two paths agreeing."""

from __future__ import annotations

import pytest

from phoenix.errors import RestoreError
from tasks.sources._mysql8 import Translator, is_mysql8, map_collation
from tasks.sources._mysql8_blocks import BlockTranslator
from tasks.sources._parallel import statements
from tests.generator.mysql8_dump import TRICKY, checks_dump, functional_index_dump, mysql8_dump

# What MariaDB 10.11 accepts among the names the translation picks.
KNOWN = {"utf8mb4_uca1400_nopad_ai_ci", "utf8mb4_uca1400_nopad_as_cs", "utf8mb4_uca1400_nopad_as_ci",
         "utf8mb4_uca1400_german2_nopad_ai_ci", "utf8mb4_nopad_bin", "utf8mb4_bin", "utf8mb4_unicode_520_nopad_ci"}


def _translator(known=KNOWN):
    seen: list[tuple[str, str]] = []
    return Translator(set(known), lambda u, h: seen.append((u, h)), "dump.sql"), seen


def _by_statements(dump: bytes) -> list[bytes]:
    tr, _ = _translator()
    return [s.strip() for _, s in tr.statements(statements(iter([dump])))]


def _by_blocks(dump: bytes, size: int) -> list[bytes]:
    tr, _ = _translator()
    blocks = (dump[i:i + size] for i in range(0, len(dump), size))
    return [s.strip() for _, s in statements(BlockTranslator(tr).blocks(blocks))]


def test_the_header_tells_a_mysql8_dump():
    assert is_mysql8(b"-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n")
    assert is_mysql8(b"-- MySQL dump 10.13  Distrib 8.4.0, for Linux (x86_64)\n")
    assert not is_mysql8(b"-- MySQL dump 10.13  Distrib 5.7.44, for Linux (x86_64)\n")
    assert not is_mysql8(b"-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)\n")


def test_0900_collations_map_to_nopad_uca1400_or_fail_with_what_to_do():
    assert map_collation(b"utf8mb4_0900_ai_ci", KNOWN) == "utf8mb4_uca1400_nopad_ai_ci"
    assert map_collation(b"utf8mb4_0900_as_cs", KNOWN) == "utf8mb4_uca1400_nopad_as_cs"
    assert map_collation(b"utf8mb4_de_pb_0900_ai_ci", KNOWN) == "utf8mb4_uca1400_german2_nopad_ai_ci"
    assert map_collation(b"utf8mb4_0900_bin", KNOWN) == "utf8mb4_nopad_bin"
    assert map_collation(b"utf8mb4_0900_ai_ci", {"utf8mb4_unicode_520_nopad_ci"}) == "utf8mb4_unicode_520_nopad_ci"
    assert map_collation(b"utf8mb4_zh_0900_as_cs", KNOWN) is None
    tr, _ = _translator()
    with pytest.raises(RestoreError, match=r"dump.sql: line 3: collation utf8mb4_zh_0900_as_cs has no MariaDB"):
        tr.rewrite(b"CREATE TABLE `t` (\n  `a` int,\n  `b` text COLLATE utf8mb4_zh_0900_as_cs\n)", 1)


def test_statements_are_translated_and_rows_left_alone():
    out = _by_statements(mysql8_dump(n=3, databases=True).encode())
    text = b"\n".join(out)
    for gone in (b"GTID_PURGED", b"SQL_LOG_BIN", b"50717", b"rocksdb", b"ENCRYPTION", b"CREATE USER", b"GRANT",
                 b"caching_sha2", b"TIME_TRUNCATE_FRACTIONAL"):
        assert gone not in text.replace(TRICKY.encode(), b""), gone
    ddl = text.replace(TRICKY.encode(), b"")
    assert b"0900" not in ddl and b"/*!8" not in ddl
    assert b"`internal_ref` varchar(40) DEFAULT NULL INVISIBLE," in text
    assert b"KEY `by_name` (`last_name`,`first_name`) IGNORED" in text
    assert b"COLLATE utf8mb4_uca1400_german2_nopad_ai_ci" in text
    rows = [s for s in out if s.startswith(b"INSERT ")]
    assert len(rows) == 1 and TRICKY.encode() in rows[0]  # the row's value, byte for byte


def test_the_client_path_translates_as_the_statement_path_at_any_block_cut():
    dump = mysql8_dump(n=120, databases=True, extended=False).encode()
    want = _by_statements(dump)
    for size in (1, 7, 64, 1000, 1 << 20):
        assert _by_blocks(dump, size) == want, size
    # inside a routine's body (DELIMITER ;;) a line that starts with INSERT is translated too
    assert any(b"PROCEDURE `note_visit`" in s and b"utf8mb4_uca1400_nopad_ai_ci" in s for s in want)


def test_definers_are_reported_once_each():
    tr, seen = _translator()
    list(tr.statements(statements(iter([mysql8_dump(n=2).encode()]))))
    assert seen == [("app", "%"), ("ops.jane", "10.0.%"), ("reporting", "10.0.%")]


def test_a_functional_index_fails_naming_the_table_and_line():
    dump = functional_index_dump().encode()
    line = dump.split(b"\n").index(b"  KEY `email_lower` ((lower(`email`)))") + 1
    for run in (lambda: _by_statements(dump), lambda: _by_blocks(dump, 100), lambda: _by_blocks(dump, 1 << 20)):
        with pytest.raises(RestoreError) as err:
            run()
        msg = str(err.value)
        assert msg.startswith(f"dump.sql: line {line}: table `contacts` has a functional index `email_lower`")
        assert "generated column" in msg


def test_unenforced_checks_are_dropped_with_a_note_on_both_paths():
    dump = checks_dump().encode()
    want = _by_statements(dump)
    assert all(_by_blocks(dump, size) == want for size in (1, 13, 200, 1 << 20))
    create = next(s for s in want if s.startswith(b"CREATE TABLE `order_lines`"))
    assert b"  KEY `order_id` (`order_id`),\n  CONSTRAINT `order_lines_chk_1` CHECK ((`qty` > 0))\n\n\n) ENGINE" in create, create
    assert b"NOT ENFORCED" not in create and b"price_positive" not in create and b"qty_small" not in create
    tr, _ = _translator()
    list(tr.statements(statements(iter([dump]))))
    assert tr.notes == [f"table `order_lines`: CHECK constraint `{c}` dropped (NOT ENFORCED in MySQL, so it never "
                        "constrained the data; MariaDB would enforce it)" for c in ("price_positive", "qty_small")]
    # the client's line numbers stay the dump's: the constraints' lines are left blank
    translated = b"".join(BlockTranslator(_translator()[0]).blocks(iter([dump])))
    assert translated.count(b"\n") == dump.count(b"\n")
