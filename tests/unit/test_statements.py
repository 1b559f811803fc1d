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
    assert err.value.line == 2


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
