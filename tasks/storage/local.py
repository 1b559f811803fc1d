"""The `local` storage backend: btrfs subvolumes on one filesystem.

image    = writable subvolume      <mount>/images/<image>
snapshot = read-only snapshot      <mount>/snaps/<image>@<snap>
clone    = writable snapshot of a snapshot (O(1), block-level copy-on-write)
flatten  = a recorded no-op: btrfs has no parent chain, a clone never depends on
           its origin's existence; the parent link is kept in metadata only so the
           catalog can count clones and refuse to remove a snapshot in use.
metadata = <mount>/meta/<image>.json, written atomically (temp + rename) under an
           fcntl lock, so concurrent processes never lose an update.
usage    = btrfs quota-group bytes: exclusive for a clone, referenced for an origin image.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from phoenix.locks import file_lock
from phoenix.proc import mounted_at
from tasks.storage.base import (
    AlreadyExists,
    Busy,
    Extent,
    InvalidName,
    NotFound,
    Parent,
    Storage,
    StorageError,
    Unavailable,
    validate_name,
)


def _btrfs(*args: str) -> str:
    res = subprocess.run(["btrfs", *args], capture_output=True, text=True)
    if res.returncode != 0:
        detail = (res.stderr or res.stdout).strip().splitlines()
        raise StorageError(
            f"btrfs {args[0]} {args[1] if len(args) > 1 else ''} failed: {detail[-1] if detail else res.returncode}"
        )
    return res.stdout


class LocalStorage(Storage):
    name = "local"

    def __init__(self, mount: Path) -> None:
        self.mount = Path(mount)

    # -- layout ------------------------------------------------------------------
    def _check(self) -> None:
        if not os.path.ismount(self.mount) or _fstype(self.mount) != "btrfs":
            raise Unavailable(f"btrfs pool {self.mount} is not mounted: run `phoenix stack up`")
        for sub in ("images", "snaps", "meta", "locks"):
            (self.mount / sub).mkdir(exist_ok=True)

    def _img(self, image: str) -> Path:
        return self.mount / "images" / validate_name(image)

    def _snap(self, image: str, snap: str) -> Path:
        return self.mount / "snaps" / f"{validate_name(image)}@{validate_name(snap, 'snapshot')}"

    def _meta_path(self, image: str) -> Path:
        return self.mount / "meta" / f"{image}.json"

    def _existing(self, image: str) -> Path:
        path = self._img(image)
        self._check()
        if not path.is_dir():
            raise NotFound(f"image {image!r} not found in {self.mount}")
        return path

    def _locked(self, image: str) -> contextlib.AbstractContextManager[bool]:
        return file_lock(self.mount / "locks" / f"{image}.lock")

    # -- the JSON record beside each subvolume -------------------------------------
    def _read(self, image: str) -> dict[str, Any]:
        try:
            return json.loads(self._meta_path(image).read_text())
        except FileNotFoundError:
            return {"meta": {}, "snaps": {}, "parent": None}

    def _write(self, image: str, record: dict[str, Any]) -> None:
        path = self._meta_path(image)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{image}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(record, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    @contextlib.contextmanager
    def _update(self, image: str) -> Iterator[dict[str, Any]]:
        with self._locked(image):
            record = self._read(image)
            yield record
            self._write(image, record)

    # -- images ----------------------------------------------------------------------
    def create(self, image: str, size_bytes: int) -> None:
        path = self._img(image)
        self._check()
        with self._locked(image):
            if path.exists():
                raise AlreadyExists(f"image {image!r} already exists")
            _btrfs("subvolume", "create", str(path))
            self._write(image, {"meta": {}, "snaps": {}, "parent": None, "size": int(size_bytes)})

    def remove(self, image: str) -> None:
        path = self._existing(image)
        with self._locked(image):
            record = self._read(image)
            if record["snaps"]:
                raise Busy(f"image {image!r} has snapshots ({', '.join(sorted(record['snaps']))}): remove them first")
            _btrfs("subvolume", "delete", str(path))
            parent = record.get("parent")
            self._meta_path(image).unlink(missing_ok=True)
        if parent:
            with self._update(parent["image"]) as prec:
                snap = prec["snaps"].get(parent["snapshot"])
                if snap and image in snap["children"]:
                    snap["children"].remove(image)

    def exists(self, image: str) -> bool:
        path = self._img(image)
        self._check()
        return path.is_dir()

    def list(self) -> list[str]:
        self._check()
        return sorted(p.name for p in (self.mount / "images").iterdir() if p.is_dir())

    def usage(self, image: str) -> int:
        path = self._existing(image)
        try:
            return self._usage(image, path)
        except StorageError:
            # Removed between the check and btrfs (a concurrent teardown): that is NotFound,
            # which listings skip, not a failure of the run that happened to list it.
            if not path.is_dir():
                raise NotFound(f"image {image!r} not found in {self.mount} (removed meanwhile)") from None
            raise

    def _usage(self, image: str, path: Path) -> int:
        subvol_id = _btrfs("inspect-internal", "rootid", str(path)).strip()
        # Quota numbers are updated at transaction commit: commit first.
        _btrfs("filesystem", "sync", str(self.mount))
        out = _btrfs("qgroup", "show", "--raw", "-e", str(self.mount))
        # A clone's own bytes are its exclusive ones; an origin image (no parent: a
        # breeder, a flattened golden) owns everything it references, even the blocks
        # its read-only snapshots share with it.
        column = 2 if self._read(image).get("parent") else 1
        for line in out.splitlines():
            cols = line.split()
            if cols and cols[0] == f"0/{subvol_id}":
                return int(cols[column])
        raise StorageError(f"no quota group for image {image!r}: run `btrfs quota enable {self.mount}`")

    def size(self, image: str) -> int:
        self._existing(image)
        return int(self._read(image).get("size", 0))

    # -- snapshots -------------------------------------------------------------------
    def snapshot(self, image: str, snap: str) -> None:
        src, dst = self._existing(image), self._snap(image, snap)
        with self._update(image) as record:
            if snap in record["snaps"] or dst.exists():
                raise AlreadyExists(f"snapshot {image}@{snap} already exists")
            _btrfs("subvolume", "snapshot", "-r", str(src), str(dst))
            record["snaps"][snap] = {"protected": False, "children": []}

    def snapshots(self, image: str) -> builtins.list[str]:
        self._existing(image)
        return sorted(self._read(image)["snaps"])

    def _snap_record(self, record: dict[str, Any], image: str, snap: str) -> dict[str, Any]:
        try:
            return record["snaps"][snap]
        except KeyError:
            raise NotFound(f"snapshot {image}@{snap} not found") from None

    def remove_snapshot(self, image: str, snap: str) -> None:
        self._existing(image)
        path = self._snap(image, snap)
        with self._update(image) as record:
            info = self._snap_record(record, image, snap)
            if info["protected"]:
                raise Busy(f"snapshot {image}@{snap} is protected: unprotect it first")
            if info["children"]:
                raise Busy(f"snapshot {image}@{snap} has clones: {', '.join(info['children'])}")
            if path.exists():
                _btrfs("subvolume", "delete", str(path))
            del record["snaps"][snap]

    def protect(self, image: str, snap: str) -> None:
        self._existing(image)
        with self._update(image) as record:
            self._snap_record(record, image, snap)["protected"] = True

    def unprotect(self, image: str, snap: str) -> None:
        self._existing(image)
        with self._update(image) as record:
            info = self._snap_record(record, image, snap)
            if info["children"]:
                raise Busy(f"snapshot {image}@{snap} has clones: {', '.join(info['children'])}")
            info["protected"] = False

    def is_protected(self, image: str, snap: str) -> bool:
        self._existing(image)
        return bool(self._snap_record(self._read(image), image, snap)["protected"])

    # -- clones ----------------------------------------------------------------------
    def clone(self, image: str, snap: str, new_image: str) -> None:
        self._existing(image)
        src, dst = self._snap(image, snap), self._img(new_image)
        # Lock order: parent, then child — the same order in remove(), so no deadlock.
        with self._update(image) as record:
            info = self._snap_record(record, image, snap)
            if not info["protected"]:
                raise Busy(f"snapshot {image}@{snap} is not protected: protect it before cloning")
            with self._locked(new_image):
                if dst.exists():
                    raise AlreadyExists(f"image {new_image!r} already exists")
                _btrfs("subvolume", "snapshot", str(src), str(dst))
                self._write(
                    new_image,
                    {
                        "meta": {},
                        "snaps": {},
                        "size": record.get("size", 0),
                        "parent": {"image": image, "snapshot": snap},
                    },
                )
            info["children"] = sorted({*info["children"], new_image})

    def children(self, image: str, snap: str) -> builtins.list[str]:
        self._existing(image)
        return sorted(self._snap_record(self._read(image), image, snap)["children"])

    def parent(self, image: str) -> Parent | None:
        self._existing(image)
        p = self._read(image).get("parent")
        return Parent(p["image"], p["snapshot"]) if p else None

    def flatten(self, image: str) -> None:
        self._existing(image)
        with self._update(image) as record:
            parent = record.get("parent")
            record["parent"] = None
            record["flattened"] = True  # a no-op on btrfs, recorded beside (not in) the image's metadata
        if parent:
            with self._update(parent["image"]) as prec:
                info = prec["snaps"].get(parent["snapshot"])
                if info and image in info["children"]:
                    info["children"].remove(image)

    # -- metadata --------------------------------------------------------------------
    def get_meta(self, image: str, key: str) -> str | None:
        self._existing(image)
        return self._read(image)["meta"].get(key)

    def set_meta(self, image: str, key: str, value: str) -> None:
        self._existing(image)
        with self._update(image) as record:
            record["meta"][key] = str(value)

    def remove_meta(self, image: str, key: str) -> None:
        self._existing(image)
        with self._update(image) as record:
            record["meta"].pop(key, None)

    def list_meta(self, image: str) -> dict[str, str]:
        self._existing(image)
        return dict(self._read(image)["meta"])

    # -- filesystem: a subvolume is already a directory --------------------------------
    def attach(self, image: str) -> Path:
        return self._existing(image)

    def detach(self, image: str) -> None:
        validate_name(image)

    def attached(self, image: str) -> Path | None:
        path = self._img(image)
        return path if path.is_dir() else None

    # -- the bytes of an image: its files (a clone exposes nothing else) -----------------
    def extents(self, image: str, snap: str | None = None, chunk: int = 8 << 20) -> Iterator[Extent]:
        root = self._existing(image) if snap is None else self._snap(image, snap)
        if not root.is_dir():
            raise NotFound(f"snapshot {image}@{snap} not found")
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for fname in sorted(filenames):
                path = Path(dirpath) / fname
                if path.is_symlink() or not path.is_file():
                    continue
                yield from _file_extents(path, str(path.relative_to(root)), chunk)

    def read(self, image: str, snap: str | None, place: str, offset: int, length: int) -> bytes:
        root = self._existing(image) if snap is None else self._snap(image, snap)
        path = (root / place).resolve()
        if not path.is_relative_to(root.resolve()):
            raise InvalidName(f"place {place!r} is not inside image {image!r}")
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                return f.read(length)
        except FileNotFoundError:
            return b""

    def zero_free(self, image: str) -> None:
        self._existing(image)  # a btrfs clone is its files; freed extents are not among them


def _file_extents(path: Path, place: str, chunk: int) -> Iterator[Extent]:
    """The data of a file; holes (a preallocated redo log, sparse tablespaces) read as zeros
    and hold nothing, so they are skipped (SEEK_DATA/SEEK_HOLE) instead of read."""
    with open(path, "rb") as f:
        size, pos = os.fstat(f.fileno()).st_size, 0
        while pos < size:
            try:
                start = os.lseek(f.fileno(), pos, os.SEEK_DATA)
                end = os.lseek(f.fileno(), start, os.SEEK_HOLE)
            except OSError:  # no data after pos (ENXIO), or no hole support: read what is left
                start, end = (size, size) if pos else (0, size)
            f.seek(start)
            for off in range(start, end, chunk):
                yield Extent(place, off, f.read(min(chunk, end - off)))
            pos = max(end, pos + 1) if end > start else size


def _fstype(mount: Path) -> str | None:
    found = mounted_at(mount.resolve())
    return found.fstype if found else None
