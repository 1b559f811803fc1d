"""The catalog's schema: what Phoenix writes into storage metadata and what it means.

Storage keeps these keys and values opaquely (strings under `phoenix.`); only the
catalog and the steps above it give them meaning. A golden's life: `breeding` → one
write of `published` (the atomic publish) → `retiring` → removed once its last clone
is gone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class Kind(StrEnum):
    BREEDER = "breeder"  # a cycle's temporary image
    GOLDEN = "golden"  # a generation
    ENV = "env"  # an environment's clone


class State(StrEnum):  # of a golden
    BREEDING = "breeding"
    PUBLISHED = "published"
    RETIRING = "retiring"


class Meta(StrEnum):
    KIND = "phoenix.kind"
    STATE = "phoenix.state"
    CREATED = "phoenix.created"  # ISO-8601 UTC
    OWNER = "phoenix.owner"  # breeder: host:pid of its cycle
    FORENSIC = "phoenix.forensic"  # golden: "passed <ISO time> <bytes scanned>" once the forensic gate passed
    DATABASES = "phoenix.databases"  # golden: JSON list of the databases it holds, the first the main one
    SOURCE = "phoenix.source"  # golden: the source it was bred from, as it may be shown (no password)
    POSITION = "phoenix.position"  # golden: a live source's binary-log position of its copy (JSON)
    RECIPE = "phoenix.recipe"  # golden: keyed digest of the rules file and key its pseudonyms follow from
    ENV = "phoenix.env"  # env: the name the user gave
    GENERATION = "phoenix.generation"  # env: the golden it was cloned from
    EXPIRES = "phoenix.expires"  # env: ISO-8601 UTC
    RUNTIME = "phoenix.runtime"  # env: the runtime its server runs on ("local" | "kubernetes")


BASE_SNAPSHOT = "base"  # the protected snapshot of a golden every environment is cloned from
BREEDER_SNAPSHOT = "golden"  # the breeder's snapshot the golden is cloned from


@dataclass(frozen=True)
class Generation:
    """A golden as `phoenix ls` shows it."""

    id: str
    state: str
    latest: bool
    created: str
    size_bytes: int
    clones: int
    verified: bool = False  # passed the forensic gate (goldens published before it existed did not)

    def as_dict(self) -> dict:
        return asdict(self)
