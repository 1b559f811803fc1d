"""A broken dump names where it broke — the line, the byte of the (decompressed) dump and the
table — on both paths: the `mariadb` client (1 job) and statement by statement (2 jobs). The
dump has one row per line (an extended INSERT whose VALUES tuples are each on their own line),
so the line where a statement began is not where it broke."""

from __future__ import annotations

import gzip
import random

import pytest

from anonymization import load_rules
from anonymization.inline import Inline
from tasks.sources.restore import RestoreError, restore

HEAD = ("-- MariaDB dump 10.19  Distrib 10.11.6-MariaDB, for debian-linux-gnu (x86_64)\n--\n"
        "-- Host: localhost    Database: x\n\n/*!40101 SET NAMES utf8mb4 */;\n\n"
        "DROP TABLE IF EXISTS `people`;\nCREATE TABLE `people` (\n  `id` int NOT NULL,\n  `name` text,\n"
        "  PRIMARY KEY (`id`)\n) ENGINE=InnoDB;\n\nLOCK TABLES `people` WRITE;\n"
        "/*!40000 ALTER TABLE `people` DISABLE KEYS */;\n")
TAIL = "/*!40000 ALTER TABLE `people` ENABLE KEYS */;\nUNLOCK TABLES;\n\n-- Dump completed on 2026-01-01  0:00:00\n"


def _rows(n: int, bad: int | None = None) -> str:
    tuples = [f"({i},'secret-name-{i}'{' oops' if i == bad else ''})" for i in range(1, n + 1)]
    return "INSERT INTO `people` VALUES " + ",\n".join(tuples) + ";\n"


def _line_of(data: bytes, at: int) -> int:
    return data[:at].count(b"\n") + 1


@pytest.mark.parametrize("jobs", [1, 2], ids=["client", "statements"])
def test_a_broken_dump_names_its_line_byte_and_table(mariadb, tmp_path, jobs):
    full = (HEAD + _rows(1000) + TAIL).encode()
    cut = full[: full.index(b"(700,") + 10]  # inside row 700 of the INSERT begun at line 16
    (tmp_path / "cut.sql").write_bytes(cut)
    with pytest.raises(RestoreError) as err:
        restore(str(tmp_path / "cut.sql"), mariadb.admin(), "cut", jobs=jobs)
    assert (f"the dump ends at line {_line_of(cut, len(cut))}, byte {len(cut)}, table `people`, "
            "inside the statement begun at line 16; the file was cut short") in str(err.value)

    bad = (HEAD + _rows(1000, bad=600) + TAIL).encode()  # a syntax error in row 600 of 1000
    (tmp_path / "bad.sql").write_bytes(bad)
    with pytest.raises(RestoreError) as err:
        restore(str(tmp_path / "bad.sql"), mariadb.admin(), "bad", jobs=jobs)
    at = bad.index(b"oops")
    assert f"restore failed at line {_line_of(bad, at)}, byte {at}, table `people`: ERROR 1064" in str(err.value)
    assert "secret-name" not in str(err.value) and "\n" not in str(err.value)  # no value of the dump

    one = bad.replace(b",\n(", b",(")  # the same INSERT on one line: the byte inside the line
    (tmp_path / "one.sql").write_bytes(one)
    with pytest.raises(RestoreError) as err:
        restore(str(tmp_path / "one.sql"), mariadb.admin(), "one", jobs=jobs)
    assert f"restore failed at line 16, byte {one.index(b'oops')}, table `people`: ERROR 1064" in str(err.value)

    # gzip: a block corrupted mid-way; its damage is the cause, not what the server made of it
    rnd = random.Random(5)  # the same damage every run: random bytes made this test pass or fail by chance
    big = full[: -len(TAIL)] + b"".join(b"INSERT INTO `people` VALUES (%d,'%s');\n" % (i, rnd.randbytes(1500).hex().encode())
                                        for i in range(2000, 5000)) + TAIL.encode()
    z = bytearray(gzip.compress(big))
    z[len(z) // 2: len(z) // 2 + 20] = b"\xff" * 20
    (tmp_path / "bad.sql.gz").write_bytes(bytes(z))
    with pytest.raises(RestoreError, match=r"bad.sql.gz: not valid gzip near byte \d+ \(.*\), after line \d+, "
                                           r"decompressed byte \d+, table `people`; the file is damaged") as err:
        restore(str(tmp_path / "bad.sql.gz"), mariadb.admin(), "gz", jobs=jobs)
    assert "secret-name" not in str(err.value)


def test_a_row_rewritten_on_the_way_in_names_the_dumps_byte(mariadb, tmp_path):
    """Anonymized on the way in, the INSERT runs with another head (its column list): the byte
    named is still the dump's, on the first line of the statement and on a later one."""
    (tmp_path / "rules.yaml").write_text("tables:\n  people: {columns: {name: name}}\n")
    rules = load_rules(tmp_path / "rules.yaml")
    bad = (HEAD + _rows(1000, bad=600) + TAIL).encode()
    for form, dump in (("later line", bad), ("first line", bad.replace(b",\n(", b",("))):
        (tmp_path / "bad.sql").write_bytes(dump)
        inline = Inline(mariadb.admin(), form.replace(" ", "_"), rules, b"test-key-0123456789abcdef-0123456789")
        with pytest.raises(RestoreError) as err:
            restore(str(tmp_path / "bad.sql"), mariadb.admin(), form.replace(" ", "_"), jobs=2, inline=inline)
        at = dump.index(b"oops")
        assert f"restore failed at line {_line_of(dump, at)}, byte {at}, table `people`" in str(err.value), form
