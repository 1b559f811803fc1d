"""`phoenix breed --source` with what is not a dump at all: exit 2, one line (issue 17)."""

from __future__ import annotations

import os

import pytest

from tests.conftest import run_phoenix


@pytest.mark.parametrize("kind", ["nul", "devnull", "fifo"])
def test_breed_refuses_a_source_that_is_not_a_dump_as_bad_input(tmp_path, kind):
    if kind == "nul":
        source = tmp_path / "prod.sql"
        source.write_bytes(b"\0" * 8192)
        what = "not a SQL dump"
    elif kind == "fifo":
        source = tmp_path / "prod.sql"
        os.mkfifo(source)
        what = "a FIFO"
    else:
        source, what = "/dev/null", "a character device"
    res = run_phoenix("breed", "--source", str(source), timeout=120)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("phoenix: error: ") and what in lines[0], res.stderr
    assert "Traceback" not in res.stderr
