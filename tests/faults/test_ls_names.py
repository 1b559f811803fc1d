"""`phoenix ls` with catalog entries whose names look like Rich markup (issue 17)."""

from __future__ import annotations

import contextlib

from tests.conftest import run_phoenix


def test_ls_prints_names_that_look_like_markup_literally(storage_local):
    from phoenix.names import env_id, image_name
    from tasks.schema import Kind, Meta

    names = ["a[/]b", "[bold red]x"]
    images = [image_name(env_id(n)) for n in names]
    try:
        for name, image in zip(names, images, strict=True):  # the catalog entries a spawn writes first
            storage_local.create(image, 16 << 20)
            for key, value in {Meta.KIND: Kind.ENV, Meta.ENV: name, Meta.GENERATION: "golden-x"}.items():
                storage_local.set_meta(image, key, value)
        res = run_phoenix("ls", env={"COLUMNS": "250"})
        assert res.returncode == 0, res.stderr
        assert all(n in res.stdout for n in names), res.stdout
    finally:
        for image in images:
            with contextlib.suppress(Exception):
                storage_local.remove(image)
