"""What the benchmarks that run flows share: an isolated state directory with its own
ports (so a benchmark never touches the demo's or the tests' stack), and its teardown."""

from __future__ import annotations

import os
from pathlib import Path


def isolate(home: Path, prefect_port: int, mon_port: int) -> None:
    """Call before importing anything that reads the settings."""
    for key, value in {"PHOENIX_HOME": str(home), "PHOENIX_PREFECT__PORT": str(prefect_port),
                       "PHOENIX_RBD__MON_PORT": str(mon_port), "PHOENIX_RBD__POOL": "bench",
                       "PHOENIX_RBD__OSD_SIZE": "12G", "PHOENIX_ANON_KEY": "bench-key-0123456789abcdef",
                       "PHOENIX_IMAGE_SIZE": "8G"}.items():
        os.environ.setdefault(key, value)


def stop(home: Path) -> None:
    """Stop the benchmark's stack; `down` stops every server of the home first."""
    from infra.local import stack
    from phoenix.config import get_settings

    get_settings.cache_clear()
    stack.down(get_settings(), progress=lambda _m: None)
