"""The catalog: which generations exist, their state, which one is `latest`.

Read from the storage's own metadata — never a second database that could drift.
A golden's life: `breeding` (being cloned/flattened by a cycle) → `published` (one
metadata write, the atomic publish) → `retiring` (beyond the number to keep, still
has clones) → removed once its last clone is gone.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from pathlib import Path

from phoenix.errors import GenerationNotFound, PhoenixError, UnverifiedGeneration
from phoenix.locks import file_lock
from tasks.runtime.base import Runtime
from tasks.schema import BASE_SNAPSHOT, Generation, Kind, Meta, State
from tasks.storage import NotFound, Storage

# The schema's names, as the rest of the code has always called them.
GOLDEN, BREEDER, ENV = Kind.GOLDEN, Kind.BREEDER, Kind.ENV
BREEDING, PUBLISHED, RETIRING = State.BREEDING, State.PUBLISHED, State.RETIRING
META_KIND, META_STATE, META_CREATED, META_FORENSIC = Meta.KIND, Meta.STATE, Meta.CREATED, Meta.FORENSIC


def utc_stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")


def utc_iso(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).isoformat(timespec="seconds")


def images(storage: Storage, kind: Kind) -> list[str]:
    """The images of one kind, sorted (storage knows no kinds: its metadata is opaque to it)."""
    out = []
    for name in storage.list():
        with contextlib.suppress(NotFound):  # removed meanwhile
            if storage.get_meta(name, Meta.KIND) == kind:
                out.append(name)
    return out


def _goldens(storage: Storage) -> list[tuple[str, dict[str, str]]]:
    out = []
    for name in images(storage, Kind.GOLDEN):
        with contextlib.suppress(NotFound):
            out.append((name, storage.list_meta(name)))
    return out


def latest(storage: Storage) -> str | None:
    """The newest published golden: `latest` is derived, so it can never point at a half one."""
    published = [(m.get(META_CREATED, ""), n) for n, m in _goldens(storage) if m.get(META_STATE) == PUBLISHED]
    return max(published)[1] if published else None


def _clones(storage: Storage, name: str) -> list[str]:
    try:
        return storage.children(name, BASE_SNAPSHOT)
    except NotFound:
        return []


def generations(storage: Storage) -> list[Generation]:
    newest = latest(storage)
    gens = []
    for name, meta in _goldens(storage):
        try:
            size = storage.usage(name)
        except NotFound:
            continue
        gens.append(Generation(id=name, state=meta.get(META_STATE, BREEDING), latest=name == newest,
                               created=meta.get(META_CREATED, ""), size_bytes=size,
                               clones=len(_clones(storage, name)), verified=_passed(meta)))
    return sorted(gens, key=lambda g: g.created, reverse=True)


def _passed(meta: dict[str, str]) -> bool:
    return meta.get(META_FORENSIC, "").startswith("passed ")


def verified(storage: Storage, generation: str) -> bool:
    """True if the golden passed the forensic gate when it was bred (every byte searched)."""
    try:
        return _passed(storage.list_meta(generation))
    except NotFound:
        return False


def require_verified(storage: Storage, generation: str, allow_unverified: bool = False) -> None:
    """Refuse to hand out clones of a golden that never passed the forensic gate."""
    if allow_unverified or verified(storage, generation):
        return
    raise UnverifiedGeneration(
        f"generation {generation} has not passed the forensic gate (published before it existed): "
        "re-breed with `phoenix breed`, or pass --allow-unverified to clone it anyway "
        "(its redo logs may hold production data)")


def resolve(storage: Storage, generation: str) -> str:
    """'latest' or a generation id → a published (or retiring) golden's id."""
    if generation == "latest":
        found = latest(storage)
        if found is None:
            raise GenerationNotFound("no published generation yet: run `phoenix breed` first")
        return found
    try:
        state = storage.get_meta(generation, META_STATE) if storage.get_meta(generation, META_KIND) == GOLDEN else None
    except (NotFound, PhoenixError):
        state = None
    if state not in (PUBLISHED, RETIRING):
        raise GenerationNotFound(f"generation {generation!r} does not exist: see `phoenix ls` for the published ones")
    return generation


def remove_generation(storage: Storage, name: str) -> None:
    """Unprotect, remove @base, remove the image. Refuses (Busy) while clones exist."""
    with contextlib.suppress(NotFound):
        for snap in storage.snapshots(name):
            storage.unprotect(name, snap)
            storage.remove_snapshot(name, snap)
        storage.remove(name)


def finish_retiring(storage: Storage, generation: str) -> bool:
    """Remove a `retiring` generation whose last clone is gone. True if removed."""
    try:
        if storage.get_meta(generation, META_STATE) != RETIRING or _clones(storage, generation):
            return False
    except NotFound:
        return False
    remove_generation(storage, generation)
    return True


def retire(storage: Storage, keep: int) -> list[str]:
    """Beyond the `keep` newest published generations: remove those without clones,
    mark the others `retiring`. Returns the removed ids. Never touches `latest`."""
    newest = latest(storage)
    published = sorted(((m.get(META_CREATED, ""), n) for n, m in _goldens(storage)
                        if m.get(META_STATE) == PUBLISHED), reverse=True)
    removed = []
    for _created, name in published[max(keep, 1):]:
        if name == newest:
            continue
        storage.set_meta(name, META_STATE, RETIRING)
    for name, meta in _goldens(storage):
        if (meta.get(META_STATE) == RETIRING or name in {n for _c, n in published[max(keep, 1):]}) and finish_retiring(storage, name):
            removed.append(name)
    return removed


# -- leftovers of cycles that died ----------------------------------------------------------
def cycle_lock(home: Path, wait: bool = False) -> contextlib.AbstractContextManager[bool]:
    """The lock a live breed cycle holds for its whole run. Yields False if taken."""
    return file_lock(home / "locks" / "breed.lock", wait)


def remove_leftovers(storage: Storage, runtime: Runtime) -> list[str]:
    """Breeders and half goldens (state `breeding`). Call only while holding the cycle
    lock (or from a cycle that holds it): then none of them belongs to a live cycle."""
    removed = []
    for name in images(storage, Kind.BREEDER):
        runtime.remove(name)
        # Killed between attaching the image and recording its server (or while its free
        # space was being zeroed): the runtime does not know it, but it may still be attached.
        storage.detach(name)
        for snap in storage.snapshots(name):
            # Only a cycle clones from a breeder, and an unflattened child is a golden
            # that never got published (perhaps not even labelled yet).
            for child in storage.children(name, snap):
                remove_generation(storage, child)
                removed.append(child)
        remove_generation(storage, name)
        removed.append(name)
    for name, meta in _goldens(storage):
        if meta.get(META_STATE) == BREEDING:
            remove_generation(storage, name)
            removed.append(name)
    return removed


def cleanup_leftovers(storage: Storage, runtime: Runtime, home: Path) -> list[str]:
    """For the reaper: remove leftovers unless a cycle is running right now."""
    with cycle_lock(home) as free:
        if not free:
            return []
        return remove_leftovers(storage, runtime)


def now_utc() -> datetime:
    return datetime.now(UTC)
