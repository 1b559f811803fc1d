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


def test_listing_while_environments_vanish_raises_nothing(settings, storage_local, unique):
    """Catalog entries removed by concurrent "teardowns" while a listing loops (real btrfs)."""
    import concurrent.futures as cf
    import threading

    from tasks import environments
    from tasks.runtime.factory import open_runtime
    from tasks.schema import Kind, Meta

    images = [f"env-{unique}{i}" for i in range(12)]
    for image in images:
        storage_local.create(image, 16 << 20)
        storage_local.set_meta(image, Meta.KIND, Kind.ENV)
        storage_local.set_meta(image, Meta.ENV, image)
    done = threading.Event()

    def listing() -> int:
        rounds = 0
        with open_runtime(settings, storage_local) as runtime:
            while not done.is_set():
                environments.environments(storage_local, runtime)
                rounds += 1
        return rounds

    try:
        with cf.ThreadPoolExecutor(4) as pool:
            listers = [pool.submit(listing) for _ in range(2)]
            list(pool.map(storage_local.remove, images))
            done.set()
            assert all(f.result() > 0 for f in listers)
    finally:
        done.set()
        for image in images:
            with contextlib.suppress(Exception):
                storage_local.remove(image)
