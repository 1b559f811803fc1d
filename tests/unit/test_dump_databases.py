"""Following the databases a dump names (tasks/sources/_databases.py): which it holds, and
that the system schemas' statements are left out of the restore."""

from __future__ import annotations

from tasks.sources._databases import Databases, named_in

ALL = [  # the shape of `mariadb-dump --all-databases` (tests/breed builds real ones)
    b"/*!40101 SET NAMES utf8mb4 */",
    b"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `crm` /*!40100 DEFAULT CHARACTER SET utf8mb4 */",
    b"USE `crm`",
    b"CREATE TABLE `contacts` (`id` int)",
    b"INSERT INTO `contacts` VALUES (1)",
    b"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `mysql` /*!40100 DEFAULT CHARACTER SET latin1 */",
    b"USE `mysql`",
    b"CREATE TABLE IF NOT EXISTS `global_priv` (`Host` char(255))",
    b"INSERT INTO `global_priv` VALUES ('%')",
    b"/*!40000 DROP DATABASE IF EXISTS `sys`*/",
    b"USE `shopx`",
    b"/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */",
]


def test_system_schemas_are_left_out_and_named():
    dbs = Databases()
    out = [s for _, s in dbs.wrap(iter(enumerate(ALL)))]
    assert dbs.names == ["crm", "shopx"] and dbs.skipped == ["mysql"]  # `sys` only dropped, never used
    assert not any(b"global_priv" in s or b"`mysql`" in s or b"`sys`" in s for s in out)
    assert out[0] == ALL[0] and out[-1] == ALL[-1] and b"INSERT INTO `contacts` VALUES (1)" in out
    # `shopx` is only USEd (as with --no-create-db): it is created first
    assert out[-3:-1] == [b"CREATE DATABASE IF NOT EXISTS `shopx`", b"USE `shopx`"]
    assert sum(s.startswith(b"CREATE DATABASE") for s in out) == 2


def test_the_names_are_found_in_a_stream_whose_lines_cross_block_boundaries(tmp_path):
    text = b"-- MariaDB dump\n" + b"".join(s + b";\n" for s in ALL) + b"-- Dump completed\n"
    blocks = [text[i : i + 7] for i in range(0, len(text), 7)]
    dbs = Databases()
    assert b"".join(dbs.tap(iter(blocks))) == text
    assert dbs.names == ["crm", "shopx"] and dbs.skipped == ["mysql"]
    (tmp_path / "d.sql").write_bytes(text)
    assert named_in(str(tmp_path / "d.sql")) == (["crm", "shopx"], ["mysql"])
    (tmp_path / "plain.sql").write_bytes(b"-- MariaDB dump\nCREATE TABLE `t` (`id` int);\n")
    assert named_in(str(tmp_path / "plain.sql")) is None
