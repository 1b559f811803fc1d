"""Environments: clone a golden, run a server on it, tear it down, reset it, reap it.

An environment is the clone `env-<id>` (its metadata says whose it is, from which
generation, until when) plus the runtime's server `<id>`. Every operation on one
environment holds its lock, so concurrent spawns of the same name get one
environment, and the reaper never removes one that is being spawned.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from phoenix.config import Settings
from phoenix.errors import EnvironmentElsewhere, EnvironmentNotFound
from phoenix.locks import file_lock
from phoenix.names import env_id, image_name, parse_ttl
from phoenix.proc import die_at
from tasks import catalog
from tasks.runtime.base import Credentials, Runtime
from tasks.schema import BASE_SNAPSHOT, Kind, Meta
from tasks.storage import NotFound, Storage

META_CREATED, META_KIND = Meta.CREATED, Meta.KIND

META_ENV, META_GEN, META_EXPIRES, META_RUNTIME = Meta.ENV, Meta.GENERATION, Meta.EXPIRES, Meta.RUNTIME


@dataclass(frozen=True)
class EnvInfo:
    """Connection info without the password (flows return this; it is stored by Prefect)."""

    name: str
    id: str
    generation: str
    host: str
    port: int
    user: str
    database: str
    expires_at: str
    state: str = "running"
    created: str = ""
    used_bytes: int | None = None
    databases: tuple[str, ...] = ()  # every database the account has: `database` first, then the dump's others

    def as_dict(self) -> dict:
        return asdict(self)


def env_lock(home: Path, eid: str, wait: bool = True) -> contextlib.AbstractContextManager[bool]:
    return file_lock(home / "locks" / f"env-{eid}.lock", wait)


def _info(storage: Storage, runtime: Runtime, eid: str, with_usage: bool = False) -> EnvInfo:
    image = image_name(eid)
    meta = storage.list_meta(image)
    ep = runtime.get(eid)
    creds = runtime.credentials(eid)
    return EnvInfo(name=meta.get(META_ENV, eid), id=eid, generation=meta.get(META_GEN, ""),
                   host=ep.host if ep else "", port=ep.port if ep else 0,
                   user=creds.user if creds else "", database=creds.database if creds else "",
                   databases=tuple(creds.databases) if creds else (),
                   expires_at=meta.get(META_EXPIRES, ""), state=ep.state if ep else "no server",
                   created=meta.get(META_CREATED, ""), used_bytes=storage.usage(image) if with_usage else None)


def _start(runtime: Runtime, eid: str, image: str, creds: Credentials | None, meta: dict[str, str]) -> None:
    labels = {"app.kubernetes.io/managed-by": "phoenix", "phoenix.io/env": eid,
              "phoenix.io/generation": meta.get(META_GEN, ""), "phoenix.io/expires": meta.get(META_EXPIRES, "")}
    runtime.start(eid, image, profile="environment", credentials=creds, labels=labels)
    runtime.wait_ready(eid, timeout=120)


def spawn(settings: Settings, storage: Storage, runtime: Runtime, name: str, generation: str = "latest",
          ttl: str | None = None, recreate: bool = False, allow_unverified: bool = False) -> EnvInfo:
    eid, lifetime = env_id(name), parse_ttl(ttl or settings.default_ttl)
    image = image_name(eid)
    with env_lock(settings.home_dir, eid):
        _require_here(storage, runtime, eid, name)
        if storage.exists(image) and recreate:
            # refuse before throwing the old clone away, not after
            catalog.require_verified(storage, catalog.resolve(storage, generation), allow_unverified)
            _teardown_locked(storage, runtime, eid)
        if storage.exists(image) and _half(storage, runtime, eid):
            _teardown_locked(storage, runtime, eid)  # a spawn that died midway: cloned anew below
        if storage.exists(image):  # it exists already, whatever its generation: found, not cloned
            # A re-spawn (every push of the branch) restarts the clock, as GitLab's auto_stop_in does.
            storage.set_meta(image, META_EXPIRES, catalog.utc_iso(catalog.now_utc() + lifetime))
            ep = runtime.get(eid)
            if ep is None or ep.state != "running":  # found again after a host restart
                _start(runtime, eid, image, None, storage.list_meta(image))
            return _info(storage, runtime, eid)
        gen = catalog.resolve(storage, generation)
        catalog.require_verified(storage, gen, allow_unverified)  # before anything is cloned
        now = catalog.now_utc()
        meta = {META_ENV: name, META_GEN: gen, META_CREATED: catalog.utc_iso(now),
                META_EXPIRES: catalog.utc_iso(now + lifetime), META_RUNTIME: runtime.name,
                META_KIND: catalog.ENV}  # the kind last: see _half
        try:
            # Killed between any two of these, the clone is half (`_half`): the reaper removes
            # it and a re-spawn of the name clones it anew.
            storage.clone(gen, BASE_SNAPSHOT, image)
            die_at("spawn:clone", settings.fault_kill_after)
            for k, v in meta.items():
                storage.set_meta(image, k, v)
            die_at("spawn:meta", settings.fault_kill_after)
            main, *others = _databases(storage, gen) or [settings.database]
            _start(runtime, eid, image, Credentials.generate(main, others=tuple(others)), meta)
            die_at("spawn:start", settings.fault_kill_after)
        except BaseException:
            # a failed spawn leaves no half environment
            with contextlib.suppress(Exception):
                runtime.remove(eid)
            with contextlib.suppress(NotFound):
                storage.detach(image)
                storage.remove(image)
            raise
        return _info(storage, runtime, eid)


def _elsewhere(storage: Storage, runtime: Runtime, eid: str) -> str | None:
    """The other runtime an environment's server runs on (both may share one storage: the
    local cluster's node mounts the same btrfs pool). Clones from before the key: this one."""
    other = storage.get_meta(image_name(eid), META_RUNTIME)
    return other if other and other != runtime.name else None


def _require_here(storage: Storage, runtime: Runtime, eid: str, name: str) -> None:
    if storage.exists(image_name(eid)) and (other := _elsewhere(storage, runtime, eid)):
        raise EnvironmentElsewhere(
            f"environment {name!r} runs on runtime {other!r}, not {runtime.name!r}: "
            f"use that runtime for it (PHOENIX_RUNTIME={other})"
        )


def _half(storage: Storage, runtime: Runtime, eid: str) -> bool:
    """An environment's clone whose spawn died before it was complete: its metadata not all
    written (its kind is written last), or no account made for it (the runtime writes the
    credentials before it starts the server). Such a clone belongs to nobody."""
    meta = storage.list_meta(image_name(eid))
    return meta.get(META_KIND) != catalog.ENV or runtime.credentials(eid) is None


def _databases(storage: Storage, gen: str) -> list[str]:
    """The databases the golden holds (its metadata; none recorded: the configured one)."""
    raw = storage.get_meta(gen, Meta.DATABASES)
    return [str(d) for d in json.loads(raw)] if raw else []


def _teardown_locked(storage: Storage, runtime: Runtime, eid: str) -> bool:
    image = image_name(eid)
    existed = runtime.get(eid) is not None or storage.exists(image)
    runtime.remove(eid)  # stops the server and detaches the image (Kubernetes: waits for the PV)
    if storage.exists(image):
        gen = storage.get_meta(image, META_GEN)
        storage.detach(image)  # attached without a server (a spawn that died in between): idempotent
        storage.remove(image)
        if gen:
            catalog.finish_retiring(storage, gen)
    return existed


def teardown(settings: Settings, storage: Storage, runtime: Runtime, name: str) -> bool:
    """True if there was something to remove."""
    eid = env_id(name)
    with env_lock(settings.home_dir, eid):
        _require_here(storage, runtime, eid, name)
        return _teardown_locked(storage, runtime, eid)


def reset(settings: Settings, storage: Storage, runtime: Runtime, name: str, to_latest: bool = False,
          allow_unverified: bool = False) -> EnvInfo:
    """Throw the environment's changes away: re-clone, same name, same credentials."""
    eid = env_id(name)
    image = image_name(eid)
    with env_lock(settings.home_dir, eid):
        if not storage.exists(image):
            raise EnvironmentNotFound(f"no environment {name!r}: spawn it first (`phoenix spawn {name}`)")
        _require_here(storage, runtime, eid, name)
        meta = storage.list_meta(image)
        creds = runtime.credentials(eid)
        old_gen = meta.get(META_GEN, "")
        gen = catalog.resolve(storage, "latest" if to_latest or not old_gen else old_gen)
        catalog.require_verified(storage, gen, allow_unverified)  # a reset re-clones: same rule as a spawn
        runtime.stop(eid)
        storage.detach(image)
        storage.remove(image)
        meta[META_GEN] = gen
        storage.clone(gen, BASE_SNAPSHOT, image)
        for k, v in meta.items():
            storage.set_meta(image, k, v)
        _start(runtime, eid, image, creds, meta)
        if old_gen and old_gen != gen:
            catalog.finish_retiring(storage, old_gen)
        return _info(storage, runtime, eid)


def environments(storage: Storage, runtime: Runtime) -> list[EnvInfo]:
    out = []
    for image in catalog.images(storage, Kind.ENV):
        eid = image.removeprefix("env-")
        with contextlib.suppress(NotFound):
            out.append(_info(storage, runtime, eid, with_usage=True))
    return sorted(out, key=lambda e: e.name)


@dataclass
class ReapReport:
    expired: list[str]
    orphan_servers: list[str]
    orphan_clones: list[str]
    leftovers: list[str]
    retired: list[str]
    drift: list[str]

    def as_dict(self) -> dict:
        return asdict(self)


def reap(settings: Settings, storage: Storage, runtime: Runtime, now: datetime | None = None) -> ReapReport:
    now = now or catalog.now_utc()
    rep = ReapReport([], [], [], [], [], [])
    # Half clones too (a spawn killed before its metadata was written): named as environments.
    images = set(catalog.images(storage, Kind.ENV)) | {i for i in storage.list() if i.startswith(image_name(""))}
    for image in sorted(images):
        eid = image.removeprefix("env-")
        with env_lock(settings.home_dir, eid, wait=False) as free:
            if not free or _elsewhere(storage, runtime, eid):
                continue  # being spawned/reset right now, or another runtime's to look after
            meta = storage.list_meta(image)
            expires = meta.get(META_EXPIRES)
            ep = runtime.get(eid)
            if _half(storage, runtime, eid):
                _teardown_locked(storage, runtime, eid)
                rep.orphan_clones.append(image)
            elif expires and datetime.fromisoformat(expires) <= now:
                _teardown_locked(storage, runtime, eid)
                rep.expired.append(meta.get(META_ENV, eid))
            elif ep is None:
                _teardown_locked(storage, runtime, eid)  # a clone no server was ever started on
                rep.orphan_clones.append(image)
            elif ep.state == "dead":
                rep.drift.append(f"server of {meta.get(META_ENV, eid)} is dead (its clone is kept; "
                                 f"`phoenix spawn {meta.get(META_ENV, eid)}` restarts it)")
    breeders = set(catalog.images(storage, Kind.BREEDER))
    for ep in runtime.list():
        if image_name(ep.name) not in images and ep.image not in breeders and not storage.exists(ep.image):
            with env_lock(settings.home_dir, ep.name, wait=False) as free:
                if free:
                    runtime.remove(ep.name)
                    rep.orphan_servers.append(ep.name)
    rep.leftovers = catalog.cleanup_leftovers(storage, runtime, settings.home_dir)
    rep.retired = catalog.retire(storage, settings.keep_generations)
    return rep
