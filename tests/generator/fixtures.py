"""Cheap access to generated dumps for other tests."""

from __future__ import annotations

from pathlib import Path

from tasks.sources.generate import generate


def make_shop_dump(path: Path, scale: int = 1, seed: int = 42) -> Path:
    """Write (or reuse) a generated dump at `path`."""
    path = Path(path)
    if not path.exists():
        generate(path, scale=scale, seed=seed)
    return path
