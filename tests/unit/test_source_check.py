"""What is not a source at all is bad input (exit 2), said before anything is created (issue 17)."""

from __future__ import annotations

import os

import pytest

from phoenix.errors import SourceInvalid
from tasks.sources.restore import check_source


def test_what_is_not_a_source_at_all_is_bad_input_naming_what_it_is(tmp_path):
    fifo = tmp_path / "pipe.sql"
    os.mkfifo(fifo)
    (tmp_path / "nul.sql").write_bytes(b"\0" * 4096)
    (tmp_path / "prose.sql").write_text("Dear team, the dump is attached.\n")
    (tmp_path / "plain").mkdir()
    cases = {"/dev/null": "character device", str(fifo): "a FIFO", str(tmp_path / "nul.sql"): "not a SQL dump",
             str(tmp_path / "prose.sql"): "not a SQL dump", str(tmp_path / "plain"): "not a mydumper dump",
             str(tmp_path / "missing.sql"): "no such file"}
    for source, what in cases.items():
        with pytest.raises(SourceInvalid) as err:
            check_source(source)
        assert what in str(err.value) and err.value.exit_code == 2, (source, str(err.value))
    (tmp_path / "ok.sql").write_text("-- MariaDB dump 10.19\n/*!40101 SET NAMES utf8mb4 */;\n")
    check_source(str(tmp_path / "ok.sql"))
