"""Splitting a dump into statements and holding keys back (pure: no server)."""

from __future__ import annotations

import pytest

from tasks.sources._parallel import StatementError, kind, statements


def test_statements_follow_delimiters_and_count_lines():
    dump = (b"-- head\n/*!40101 SET NAMES utf8mb4 */;\n\nCREATE TABLE t (\n  a int\n);\n"
            b"INSERT INTO t VALUES (1),(2);\nDELIMITER ;;\nCREATE TRIGGER x BEFORE INSERT ON t\n"
            b"FOR EACH ROW BEGIN SET NEW.a = 1; END ;;\nDELIMITER ;\nLOCK TABLES `t` WRITE;\n")
    got = list(statements(iter([dump[:30], dump[30:77], dump[77:]])))  # blocks cut mid-line
    assert [line for line, _ in got] == [2, 4, 7, 9, 12]
    assert [kind(s) for _, s in got] == ["session", "ddl", "rows", "ddl", "skip"]
    assert got[3][1].endswith(b"SET NEW.a = 1; END ")
    with pytest.raises(StatementError) as err:
        list(statements(iter([b"SELECT 1;\nINSERT INTO t VALUES (1),\n(2"])))
    assert err.value.cut and err.value.begun == 2


def test_a_truncation_is_where_the_stream_ends_not_where_its_statement_began():
    dump = b"SET NAMES utf8mb4;\nINSERT INTO `people` VALUES (1,'a'),\n(2,'b'),\n(3,'"
    with pytest.raises(StatementError) as err:
        list(statements(iter([dump[:25], dump[25:50], dump[50:]])))  # blocks cut mid-line
    assert (err.value.line, err.value.offset, err.value.table, err.value.begun) == (4, len(dump), "people", 2)
    assert "inside the statement begun at line 2" in err.value.message


def test_a_server_error_is_placed_in_its_line_of_a_multi_line_statement():
    from tasks.sources._position import Tracker, within

    stmt = b"INSERT INTO `people` VALUES (1,'a'),\n(2,'b' oops),\n(3,'c')"
    message = "You have an error in your SQL syntax; ... near 'oops),\n(3,'c')' at line 2"
    assert within(message, stmt) == (1, stmt.index(b"oops"))
    assert within("You have an error ... near '' at line 3", stmt + b";") == (2, len(stmt))  # at the end
    assert within("Duplicate entry '…' for key 'PRIMARY'", stmt) == (0, 0)  # no place: the statement's start
    long = b"INSERT INTO `people` VALUES " + b",".join(b"(%d,'x')" % i for i in range(99)) + b",(99,'y' z),(100,'x')"
    quoted = long[long.index(b"z),"):][:80].decode() + "..."  # 80 characters, then `...`
    assert within(f"... near '{quoted}' at line 1", long) == (0, long.index(b"z),"))
    # The client names the line its statement began on; the tracker finds it in what passed.
    dump = b"-- head\nCREATE TABLE `people` (\n  `id` int\n);\n" + stmt + b";\nINSERT INTO `other` VALUES (1);\n"
    track = Tracker(decompressed=True, keep=len(dump) - 16)  # its first block is forgotten
    for _ in track.blocks(iter([dump[i:i + 16] for i in range(0, len(dump), 16)])):
        pass
    at = track.locate(5, message)
    assert (at.line, at.offset, at.table) == (6, dump.index(b"oops"), "people")
    assert str(at) == f"line 6, decompressed byte {dump.index(b'oops')}, table `people`"
    assert str(track.end()) == f"line 8, decompressed byte {len(dump)}, table `other`"


def test_the_clients_error_is_its_whole_message_redacted_on_one_line():
    from tasks.sources._client import failure

    stderr = (b"ERROR 1064 (42000) at line 16: You have an error in your SQL syntax; check the manual near "
              b"'oops),\n(601,'secret-601'),\n(602,'secret-602' at line 600\n")
    got = failure(stderr)
    assert got.line == 16 and "near 'oops)," in got.raw  # to locate it, never shown
    assert got.message == "ERROR 1064 (42000): You have an error in your SQL syntax; check the manual near '…' at line 600"


def test_keys_leave_create_table_and_come_back_after_the_rows():
    from tasks.sources._keys import Deferral, split_create

    create = (b"CREATE TABLE `t` (\n  `id` int NOT NULL,\n  `n` int NOT NULL AUTO_INCREMENT,\n  `p` int,\n"
              b"  PRIMARY KEY (`id`),\n  KEY `by_n` (`n`),\n  UNIQUE KEY `u` (`p`,`id`),\n"
              b"  CONSTRAINT `fk` FOREIGN KEY (`p`) REFERENCES `x` (`id`)\n) ENGINE=InnoDB")
    stripped, defs = split_create(create)
    # The AUTO_INCREMENT column's key must stay; the last kept line loses its comma.
    assert defs == [b"UNIQUE KEY `u` (`p`,`id`)", b"CONSTRAINT `fk` FOREIGN KEY (`p`) REFERENCES `x` (`id`)"]
    assert b"  KEY `by_n` (`n`)\n) ENGINE" in stripped
    held = Deferral(hold=lambda t, _db: t == "held")
    out = [s for _, s in held.wrap(iter([
        (1, create), (2, b"INSERT INTO `t` VALUES (1,1,1)"), (3, b"/*!40000 ALTER TABLE `t` ENABLE KEYS */"),
        (4, create.replace(b"`t`", b"`held`", 1)), (5, b"CREATE TABLE `plain` (`id` int)"),
        (6, create.replace(b"`t`", b"`nomarker`", 1))]))]
    assert out[:3] == [stripped, b"INSERT INTO `t` VALUES (1,1,1)", b"/*!40000 ALTER TABLE `t` ENABLE KEYS */"]
    assert out[3] == b"ALTER TABLE `t` ADD " + b", ADD ".join(defs)
    assert out[-1] == b"ALTER TABLE `nomarker` ADD " + b", ADD ".join(defs)  # no marker: at the end
    assert held.held == {(None, "held"): [d.decode() for d in defs]} and not any(b"`held` ADD" in s for s in out)


@pytest.mark.parametrize("kind", ["gz", "zst"])
def test_a_damaged_compressed_dump_names_where_its_decompressed_stream_stopped(tmp_path, kind):
    import gzip
    import random

    import zstandard

    from tasks.sources._position import StreamBroken, Tracker
    from tasks.sources.restore import dump_blocks

    rnd = random.Random(13)
    sql = b"".join(b"INSERT INTO `t%d` VALUES (1,'%s');\n" % (i // 200, rnd.randbytes(2000).hex().encode())
                   for i in range(1000))  # 4 MB that do not compress: the damage is past the first block
    packed = gzip.compress(sql) if kind == "gz" else zstandard.ZstdCompressor(write_checksum=True).compress(sql)
    cut = tmp_path / f"cut.sql.{kind}"
    cut.write_bytes(packed[: len(packed) * 3 // 4])
    bad = bytearray(packed)
    bad[len(bad) // 2: len(bad) // 2 + 64] = b"\xff" * 64
    (tmp_path / f"bad.sql.{kind}").write_bytes(bytes(bad))
    for path, what in ((cut, "stream ends early"), (tmp_path / f"bad.sql.{kind}", "not valid")):
        track = Tracker(decompressed=True)
        with pytest.raises(StreamBroken) as err:
            for _ in track.blocks(dump_blocks(path)):
                pass
        assert what in str(err.value) and f", after line {track.end().line}, decompressed byte {track.offset}, table `t" \
            in str(err.value)
        assert str(err.value).endswith("copy or dump it again")


def test_a_damaged_statement_head_is_never_taken_for_a_table_name():
    """Decompressed garbage can eat a head's closing backquote: the "name" then runs into the
    rows (seen in CI: `people4437,'ecea…`). No name is longer than 64 characters or crosses a
    line, so the table is the last head that is whole — and no row reaches the message."""
    from tasks.sources._position import Tracker, table_in

    damaged = (b"\nINSERT INTO `people` VALUES (1,'a');\nINSERT INTO `peo\xffle4437,'secret-value-"
               + b"x" * 300 + b"'); INSERT INTO `")
    assert table_in(damaged) == "people"
    track = Tracker(decompressed=True)
    for _ in track.blocks(iter([damaged])):
        pass
    assert track.table == "people" and "secret" not in str(track.end())
    across = b"\nCREATE TABLE `a\nb` (\n"  # a backquote that closes on the next line is no name either
    assert table_in(b"\nLOCK TABLES `kept` WRITE;" + across) == "kept"
