"""The one error tree: every user-facing failure is a PhoenixError with a documented exit code."""

from __future__ import annotations

import inspect
import os
import subprocess
from pathlib import Path

import pytest

from phoenix import errors
from phoenix.db import redact

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


def test_the_readme_publishes_the_exit_codes_of_the_error_module():
    assert errors.exit_code_table() in README.read_text()


def test_every_error_class_is_in_the_tree_and_its_exit_code_is_documented():
    classes = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, errors.PhoenixError)]
    doc = errors.__doc__ or ""
    for cls in classes:
        assert cls.__name__ in doc, f"{cls.__name__} missing from the tree in phoenix/errors.py"
        assert cls.exit_code in errors.EXIT_CODES, cls


def test_input_errors_exit_2_and_storage_names_are_storage_errors_too():
    assert errors.InvalidName("x").exit_code == 2 and isinstance(errors.InvalidName("x"), errors.StorageError)
    assert errors.KubernetesUnreachable("x").exit_code == 6
    assert isinstance(errors.KubernetesError("x"), errors.RuntimeError_)
    assert errors.ForensicFailed("x").exit_code == 4 and isinstance(errors.ForensicFailed("x"), errors.GateFailed)


def test_a_message_is_one_line():
    assert str(errors.PhoenixError("a\nb   c")) == "a b c"


def test_server_messages_lose_the_values_they_quote():
    assert redact("Duplicate entry 'ada@x.de' for key 'uq_customers_email'") == \
        "Duplicate entry '…' for key 'uq_customers_email'"
    syntax = "You have an error in your SQL syntax; … near 'VALUES ((1,'Ada','De\\'rek'),(2,' at line 1"
    assert "Ada" not in redact(syntax) and "at line 1" in redact(syntax)
    assert "\\xF0" not in redact("Incorrect string value: '\\xF0\\x9F' for column `t`.`c` at row 1")


@pytest.mark.parametrize("args, says", [
    (["ci", "spawn", "x", "--json"], "No such option: --json: see `phoenix ci spawn --help`"),
    (["spawn"], "Missing argument 'name': see `phoenix spawn --help`"),
    (["nosuch"], "No such command 'nosuch': see `phoenix --help`"),
    (["generate", "--scale", "x"], "Invalid value for '--scale'"),
])
def test_a_usage_error_is_one_line_and_exit_2(tmp_path, args, says):
    """Click's boxed usage text was 5 lines of box drawing on stderr, not `phoenix: error:`."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PHOENIX_HOME": str(tmp_path)}
    res = subprocess.run([str(REPO / ".venv/bin/phoenix"), *args], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.startswith("phoenix: error: ") and says in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
