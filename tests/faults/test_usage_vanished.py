"""An image that vanishes between storage's check and btrfs is NotFound (issue 17)."""

from __future__ import annotations

import contextlib

import pytest


def test_usage_of_an_image_removed_after_its_check_is_not_found(storage_local, unique):
    from tasks.storage import NotFound

    image = f"{unique}-gone"
    storage_local.create(image, 16 << 20)
    existing = storage_local._existing

    def check_then_vanish(name):  # the call order of a concurrent teardown: check, remove, btrfs
        path = existing(name)
        del storage_local._existing  # once: remove() checks too
        storage_local.remove(name)
        return path

    storage_local._existing = check_then_vanish
    try:
        with pytest.raises(NotFound):
            storage_local.usage(image)
    finally:
        storage_local.__dict__.pop("_existing", None)
        with contextlib.suppress(Exception):
            storage_local.remove(image)
