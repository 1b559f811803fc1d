"""An alias bomb in a rules file is refused before it expands (issue 17)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Eight levels of ten aliases: 10**8 "x" once expanded (~500 MB as the string the fixed
# strategy builds), a few hundred bytes as a file.
_BOMB_LEVELS = 8


def _bomb(path: Path) -> Path:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    for i in range(1, _BOMB_LEVELS):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]")
    value = textwrap.indent("\n".join(lines), "      ")
    path.write_text("tables:\n  t:\n    columns:\n      c:\n        strategy: fixed\n        args:\n"
                    "          value:\n" + textwrap.indent(value, "    ") + "\n")
    return path


_PROBE = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))  # a regression must not take the machine down
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
from anonymization.rules import load_rules
from phoenix.errors import RulesError
before = hwm()
try:
    rules = load_rules(sys.argv[1])
    str(rules.tables["t"].columns["c"].args["value"])  # what the fixed strategy does with it
    print("accepted")
except RulesError as err:
    print("refused", err)
except MemoryError:
    print("memory")
print(hwm() - before)
"""


def test_an_alias_bomb_in_rules_is_refused_without_expanding(tmp_path):
    bomb = _bomb(tmp_path / "bomb.yaml")
    res = subprocess.run([sys.executable, "-c", _PROBE, str(bomb)], capture_output=True, text=True, cwd=REPO,
                         timeout=60)
    verdict, growth = res.stdout.strip().splitlines()
    assert verdict.startswith("refused") and "bomb.yaml:" in verdict and "alias" in verdict, verdict
    assert "\n" not in verdict
    assert int(growth) < 100 << 20, f"peak RSS grew by {int(growth) >> 20} MB"
