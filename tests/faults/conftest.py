"""Fault tests against the real local stack (btrfs, Prefect, MariaDB): issue 17's defects."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO, run_phoenix


@pytest.fixture(scope="session")
def local_golden(settings, shop_dump, btrfs_pool, tmp_path_factory):
    """A published golden on btrfs. Bred with a rules copy in which support_tickets is
    truncated (the default shop rules' scrubbed bodies may fail the forensic gate here)."""
    from tasks import catalog
    from tasks.storage.local import LocalStorage

    with LocalStorage(settings.btrfs_mount) as st:
        gen = catalog.latest(st)
    if gen is None:
        shop = (REPO / "anonymization" / "rules" / "shop.yaml").read_text()
        rules = tmp_path_factory.mktemp("rules") / "shop.yaml"
        rules.write_text(re.sub(r"(?m)^  support_tickets:\n(    .*\n)+", "  support_tickets: {truncate: true}\n", shop))
        res = run_phoenix("breed", "--source", str(shop_dump), "--rules", str(rules))
        assert res.returncode == 0, res.stderr[-2000:]
        with LocalStorage(settings.btrfs_mount) as st:
            gen = catalog.latest(st)
    return gen


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(kv.split("=", 1) for kv in raw.decode(errors="replace").split("\0") if "=" in kv)
