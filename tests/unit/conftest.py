"""The fast tier: pure code only — no root, no stack, no Prefect server, no MariaDB."""

import pytest


@pytest.fixture(scope="session", autouse=True)
def prefect_server():
    """Overrides the integration suite's autouse fixture: nothing here talks to Prefect."""
    return None
