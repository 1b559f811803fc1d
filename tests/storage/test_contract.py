"""The storage contract, run against the real btrfs pool and the real Ceph cluster."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os

import pytest

from tasks.storage import AlreadyExists, Busy, InvalidName, NotFound, Storage

MiB = 1 << 20


def _wipe(st: Storage, prefix: str) -> None:
    """Remove every image of this test, children first (leftovers of a failed run)."""
    for _ in range(3):
        for name in sorted(st.list(), key=lambda n: st.parent(n) is None):
            if not name.startswith(prefix):
                continue
            with contextlib.suppress(Exception):
                st.detach(name)
                for snap in st.snapshots(name):
                    for child in st.children(name, snap):
                        st.detach(child)
                        st.remove(child)
                    st.unprotect(name, snap)
                    st.remove_snapshot(name, snap)
                st.remove(name)


@pytest.fixture
def st(storage, unique):
    _wipe(storage, unique)
    yield storage
    _wipe(storage, unique)


def _golden(st: Storage, name: str, payload: bytes = b"golden-data") -> None:
    st.create(name, 256 * MiB)
    path = st.attach(name)
    (path / "data.txt").write_bytes(payload)
    st.detach(name)
    st.snapshot(name, "base")
    st.protect(name, "base")


def test_create_list_exists_remove(st, unique):
    name = f"{unique}-a"
    st.create(name, 64 * MiB)
    assert st.exists(name) and name in st.list()
    assert st.size(name) == 64 * MiB
    with pytest.raises(AlreadyExists):
        st.create(name, 64 * MiB)
    st.remove(name)
    assert not st.exists(name) and name not in st.list()
    with pytest.raises(NotFound):
        st.remove(name)


def test_clone_sees_parent_and_writes_stay_in_clone(st, unique):
    g, c = f"{unique}-g", f"{unique}-c"
    _golden(st, g)
    st.clone(g, "base", c)
    assert st.children(g, "base") == [c]
    assert st.parent(c).image == g and st.parent(c).snapshot == "base"
    path = st.attach(c)
    assert (path / "data.txt").read_bytes() == b"golden-data"
    (path / "data.txt").write_bytes(b"changed-in-clone")
    (path / "new.txt").write_text("only here")
    st.detach(c)
    # a second clone of the same snapshot still sees the original
    c2 = f"{unique}-c2"
    st.clone(g, "base", c2)
    path2 = st.attach(c2)
    assert (path2 / "data.txt").read_bytes() == b"golden-data"
    assert not (path2 / "new.txt").exists()
    st.detach(c2)


def test_snapshot_with_clones_refuses_removal_and_loses_nothing(st, unique):
    g, c = f"{unique}-g", f"{unique}-c"
    _golden(st, g)
    st.clone(g, "base", c)
    with pytest.raises(Busy):
        st.unprotect(g, "base")
    with pytest.raises(Busy):
        st.remove_snapshot(g, "base")
    with pytest.raises(Busy):
        st.remove(g)
    assert st.is_protected(g, "base")
    assert (st.attach(c) / "data.txt").read_bytes() == b"golden-data"
    st.detach(c)
    st.remove(c)
    st.unprotect(g, "base")
    st.remove_snapshot(g, "base")
    st.remove(g)
    assert not st.exists(g)


def test_unprotected_snapshot_cannot_be_cloned(st, unique):
    g = f"{unique}-g"
    st.create(g, 64 * MiB)
    st.snapshot(g, "s1")
    with pytest.raises(Busy):
        st.clone(g, "s1", f"{unique}-c")
    with pytest.raises(AlreadyExists):
        st.snapshot(g, "s1")
    assert st.snapshots(g) == ["s1"]
    with pytest.raises(NotFound):
        st.protect(g, "nope")


def test_flatten_cuts_the_parent_link(st, unique):
    g, c = f"{unique}-g", f"{unique}-c"
    _golden(st, g)
    st.clone(g, "base", c)
    st.flatten(c)
    assert st.parent(c) is None
    assert st.children(g, "base") == []
    st.unprotect(g, "base")  # no clone depends on it any more
    assert (st.attach(c) / "data.txt").read_bytes() == b"golden-data"
    st.detach(c)


def test_metadata_round_trip_and_listing_by_kind(st, unique):
    a, b = f"{unique}-a", f"{unique}-b"
    st.create(a, 64 * MiB)
    st.create(b, 64 * MiB)
    st.set_meta(a, "phoenix.kind", "golden")
    st.set_meta(a, "phoenix.note", "ünïcode ✓")
    st.set_meta(b, "phoenix.kind", "env")
    assert st.get_meta(a, "phoenix.note") == "ünïcode ✓"
    assert st.list_meta(a) == {"phoenix.kind": "golden", "phoenix.note": "ünïcode ✓"}
    assert st.get_meta(a, "phoenix.missing") is None
    assert {a, b} <= set(st.list())  # the metadata is opaque to storage: the catalog filters by kind
    st.remove_meta(a, "phoenix.note")
    st.remove_meta(a, "phoenix.note")  # idempotent
    assert "phoenix.note" not in st.list_meta(a)


def test_clone_starts_without_the_parents_metadata(st, unique):
    g, c = f"{unique}-g", f"{unique}-c"
    _golden(st, g)
    st.set_meta(g, "phoenix.kind", "golden")
    st.clone(g, "base", c)
    assert st.get_meta(c, "phoenix.kind") is None
    assert st.list_meta(c) == {}


def test_usage_of_a_fresh_clone_is_much_smaller_than_the_parent(st, unique):
    g, c = f"{unique}-g", f"{unique}-c"
    _golden(st, g, payload=b"x" * (32 * MiB))
    st.clone(g, "base", c)
    st.flatten(g)  # no-op for origin images; keeps the golden's bytes its own
    assert st.usage(g) >= 30 * MiB
    assert st.usage(c) < st.usage(g) / 4


def test_snapshot_before_and_after_a_write(st, unique):
    g = f"{unique}-g"
    st.create(g, 128 * MiB)
    path = st.attach(g)
    (path / "v.txt").write_text("before")
    st.detach(g)
    st.snapshot(g, "s1")
    path = st.attach(g)
    (path / "v.txt").write_text("after")
    st.detach(g)
    st.snapshot(g, "s2")
    for snap, expected in (("s1", "before"), ("s2", "after")):
        st.protect(g, snap)
        clone = f"{unique}-{snap}"
        st.clone(g, snap, clone)
        assert (st.attach(clone) / "v.txt").read_text() == expected
        st.detach(clone)


def test_attach_and_detach_are_idempotent(st, unique):
    g = f"{unique}-g"
    st.create(g, 64 * MiB)
    p1 = st.attach(g)
    assert st.attach(g) == p1
    assert st.attached(g) == p1
    st.detach(g)
    st.detach(g)
    if st.name == "rbd":
        assert st.attached(g) is None


def _found(st: Storage, image: str, marker: bytes, snap: str | None = None) -> int:
    return sum(e.data.count(marker) for e in st.extents(image, snap))


def test_extents_hold_every_file_and_its_snapshot_too(st, unique):
    g = f"{unique}-g"
    _golden(st, g, payload=b"kept-marker-0123456789" * 3)
    assert _found(st, g, b"kept-marker-0123456789") == 3
    assert _found(st, g, b"kept-marker-0123456789", "base") == 3  # a snapshot reads the same bytes
    assert sum(len(e.data) for e in st.extents(g)) >= 66


def test_read_gives_the_bytes_an_extent_holds_also_in_a_clones_parent_snapshot(st, unique):
    g, c = f"{unique}-g", f"{unique}-c"
    _golden(st, g, payload=b"read-marker-0123456789")
    hit = next(e for e in st.extents(g) if b"read-marker-0123456789" in e.data)
    at = hit.offset + hit.data.index(b"read-marker-0123456789")
    assert st.read(g, None, hit.place, at, 22) == b"read-marker-0123456789"
    assert st.read(g, "base", hit.place, at, 22) == b"read-marker-0123456789"
    st.clone(g, "base", c)  # a clone's place names the same bytes of its parent (the forensic gate relies on it)
    place = next(e.place for e in st.extents(c) if b"read-marker-0123456789" in e.data)
    assert st.read(g, "base", place, at, 22) == st.read(c, None, place, at, 22) == b"read-marker-0123456789"
    assert st.read(g, None, hit.place, 1 << 40, 8) == b""


def test_zero_free_leaves_files_and_wipes_what_deleted_files_left(st, unique):
    """RBD: a deleted file's blocks stay in the image until zeroed; btrfs: a clone is its
    files, a deleted one is in none of them. Either way, what remains is intact."""
    g = f"{unique}-g"
    st.create(g, 256 * MiB)
    path = st.attach(g)
    (path / "keep.txt").write_bytes(b"kept-marker-0123456789")
    (path / "gone.bin").write_bytes(b"gone-marker-0123456789" * 50_000)
    os.sync()
    (path / "gone.bin").unlink()
    st.detach(g)
    if st.name == "rbd":
        assert _found(st, g, b"gone-marker-0123456789") > 0  # why zero_free exists
    st.zero_free(g)
    assert _found(st, g, b"gone-marker-0123456789") == 0
    assert _found(st, g, b"kept-marker-0123456789") == 1
    assert (st.attach(g) / "keep.txt").read_bytes() == b"kept-marker-0123456789"
    st.detach(g)


def test_twenty_concurrent_clones(st, unique):
    g = f"{unique}-g"
    _golden(st, g)
    names = [f"{unique}-c{i:02d}" for i in range(20)]
    with cf.ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(lambda n: st.clone(g, "base", n), names))
    assert st.children(g, "base") == sorted(names)
    assert set(names) <= set(st.list())


@pytest.mark.parametrize("bad", ["", "../x", "x" * 300, "has space", "ünï", "a/b", "-lead", "."])
def test_invalid_names_are_rejected_before_the_backend(st, bad):
    with pytest.raises(InvalidName):
        st.create(bad, MiB)
    with pytest.raises(InvalidName):
        st.exists(bad)
