"""Shared fixtures: the real local stack, started through the project's own code.

The test suite runs in its own state directory (`PHOENIX_HOME`, set by `make test`
to `.phoenix-test`) with its own ports, so it never touches the demo's stack.
Fixtures call the stack parts' idempotent `up()`: if `make test` already started a
part, it is reused; if a test file is run alone, the part is started here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Defaults for a test run started without `make test` (e.g. `pytest tests/storage`).
os.environ.setdefault("PHOENIX_HOME", str(REPO / ".phoenix-test"))
os.environ.setdefault("PHOENIX_PREFECT__PORT", "4211")
os.environ.setdefault("PHOENIX_RBD__MON_PORT", "6799")
os.environ.setdefault("PHOENIX_RBD__POOL", "phoenix-test")
os.environ.setdefault("PHOENIX_KUBERNETES__API_PORT", "6453")
os.environ.setdefault("PHOENIX_KUBERNETES__ETCD_PORT", "2389")
os.environ.setdefault("PHOENIX_ANON_KEY", "test-key-not-secret-0123456789abcdef")


@pytest.fixture(scope="session")
def settings():
    from phoenix.config import get_settings

    get_settings.cache_clear()
    return get_settings()
