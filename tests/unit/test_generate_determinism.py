"""Same seed, same bytes: also across processes, whose PYTHONHASHSEED differs (issue 17)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_same_seed_gives_the_same_bytes_in_two_processes(tmp_path):
    code = ("import sys; from tasks.sources.generate import generate; "
            "generate(sys.argv[1], scale=1, seed=7)")
    outs = []
    for i, hashseed in enumerate(("1", "2")):
        out = tmp_path / f"d{i}.sql"
        env = {**os.environ, "PYTHONHASHSEED": hashseed}
        subprocess.run([sys.executable, "-c", code, str(out)], check=True, cwd=REPO, env=env, timeout=120)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
