"""Every failure a user can act on, in one tree. `str(err)` is the one line the CLI prints
(`phoenix: error: <what> … <what to do>`) and `exit_code` its exit status; no traceback
reaches a user, and no message holds a secret or an original value.

    PhoenixError                        1
    ├── ConfigError                     2  a configuration key or value is wrong
    │   └── InvalidInput                2  a name, TTL, generation or file given on the command line
    │       ├── InvalidName             2  an image, snapshot or server name (also a StorageError)
    │       ├── InvalidEnvName          2  an environment name
    │       ├── InvalidTTL              2  an environment's time-to-live
    │       ├── RulesError              2  the anonymization rules file
    │       ├── GenerateError           2  the generator's arguments
    │       ├── GenerationNotFound      2
    │       ├── SourceInvalid           2  not a source at all: a device, FIFO, plain dir, not SQL (also a SourceError)
    │       ├── UnverifiedGeneration    2  published before the forensic gate (--allow-unverified)
    │       ├── EnvironmentNotFound     2
    │       └── EnvironmentElsewhere    2  it runs on another runtime than the configured one
    ├── StackError                      1  a part of the local stack cannot start or be reached
    ├── StorageError                    1  (tasks/storage)
    │   ├── NotFound                    1
    │   ├── AlreadyExists               1
    │   ├── Busy                        1  snapshots, clones, protected, attached
    │   └── Unavailable                 1  Ceph down, btrfs pool not mounted
    │       └── Stalled                 1  Ceph did not answer within rbd.op_timeout (an OSD stalled or down)
    ├── RuntimeError_                   1  (tasks/runtime)
    │   ├── ServerNotFound              1
    │   ├── ServerFailed                1  did not start, answer in time, or died
    │   └── KubernetesError             1  the API server refused a request
    │       └── KubernetesUnreachable   6
    ├── SourceError                     1  (tasks/sources)
    │   ├── RestoreError                1  where the dump broke
    │   └── IncrementalUnsupported      1  a change an incremental cycle cannot apply (its position, why)
    ├── DatabaseError                   1  a statement failed (its message redacted)
    ├── AnonymizationError              1  (anonymization)
    │   ├── CollisionError              1  pseudonyms still collide in a unique key
    │   └── GateFailed                  4  the GDPR gate found personal data
    │       └── ForensicFailed          4  … in the bytes of the image
    ├── CycleBusy                       3  another breed cycle holds the lock or the slot
    ├── RunFailed                       5  a CI-triggered flow run did not complete
    └── MigrationFailed                 1  the branch's migrations failed against its environment

Causes are chained (`raise … from exc`) except where the cause's text could carry a
secret or a value (database errors, whose messages quote rows): those say `from None`.
"""

from __future__ import annotations

# The exit codes the README publishes (a test checks README and this table agree).
EXIT_CODES: dict[int, str] = {
    0: "ok",
    1: "a failure",
    2: "bad input (config, names, rules, a source that is not a dump, an unknown flag or a missing argument)",
    3: "another breed cycle is running",
    4: "the GDPR gate failed (in SQL, or the forensic gate found an original in the image's bytes)",
    5: "a CI-triggered flow run did not complete",
    6: "the Kubernetes API server is unreachable (said within `kubernetes.request_timeout`, 8 s)",
}


class PhoenixError(Exception):
    """A failure the user can act on; `str(err)` is the one line shown."""

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        # One line only: multi-line messages break the CLI contract and CI log parsing.
        super().__init__(" ".join(str(message).split()))
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigError(PhoenixError):
    """A configuration key or value is wrong."""

    exit_code = 2


class InvalidInput(ConfigError):
    """Something given on the command line or as a flow parameter is not acceptable."""


class InvalidEnvName(InvalidInput):
    """An environment name."""


class InvalidTTL(InvalidInput):
    """An environment's time-to-live."""


class RulesError(InvalidInput):
    """The anonymization rules file: its line and what to change."""


class GenerateError(InvalidInput):
    """The dump generator's arguments."""


class GenerationNotFound(InvalidInput):
    pass


class EnvironmentNotFound(InvalidInput):
    pass


class EnvironmentElsewhere(InvalidInput):
    pass


class UnverifiedGeneration(InvalidInput):
    """A golden published before the forensic gate existed: its redo log may hold originals."""


class StackError(PhoenixError):
    """A part of the local stack cannot be installed, started or reached."""


class StorageError(PhoenixError):
    """Base of all storage failures."""


class NotFound(StorageError):
    pass


class AlreadyExists(StorageError):
    pass


class Busy(StorageError):
    """Has snapshots/clones, is protected, or is attached."""


class Unavailable(StorageError):
    """The backend cannot be reached (Ceph down, btrfs pool not mounted)."""


class Stalled(Unavailable):
    """The backend did not answer an operation within its timeout (an OSD stalled or down):
    not retried at once — a stall outlasts a retry — but a later run recovers."""


class InvalidName(InvalidInput, StorageError):
    """An image, snapshot or server name: bad input (2), raised before any backend call."""


class RuntimeError_(PhoenixError):
    """Base of runtime failures (named with a trailing underscore to keep the builtin)."""


class ServerNotFound(RuntimeError_):
    pass


class ServerFailed(RuntimeError_):
    """The server did not start, did not answer in time, or died."""


class KubernetesError(RuntimeError_):
    """The API server refused a request or could not be reached."""


class KubernetesUnreachable(KubernetesError):
    exit_code = 6


class SourceError(PhoenixError):
    """A source of production data (dump, directory, live server)."""


class SourceInvalid(InvalidInput, SourceError):
    """What was given as the source is not one at all (a device, a FIFO, a plain directory,
    a file that is not SQL): bad input (2), said before anything is created."""


class RestoreError(SourceError):
    """The source could not be restored; the message says where it broke."""


class IncrementalUnsupported(SourceError):
    """An incremental cycle met what it cannot apply to the last golden (DDL, a table without
    a primary key, a statement-format event, purged binary logs): `mode=auto` breeds in full
    instead, `mode=incremental` fails. `position` is the binary-log event's, if one."""

    def __init__(self, message: str, *, position: str | None = None) -> None:
        super().__init__(message)
        self.position = position


class DatabaseError(PhoenixError):
    """A statement failed on a database server (the message is redacted: phoenix.db.redact)."""


class AnonymizationError(PhoenixError):
    """Base of anonymization failures."""


class CollisionError(AnonymizationError):
    """Pseudonyms still collide in a unique key."""


class GateFailed(AnonymizationError):
    exit_code = 4


class ForensicFailed(GateFailed):
    """An original value survives in the bytes of the image (the cycle fails closed)."""


class CycleBusy(PhoenixError):
    exit_code = 3


class RunFailed(PhoenixError):
    exit_code = 5


class MigrationFailed(PhoenixError):
    """The branch's migration command failed against its environment (which stays)."""


def exit_code_table() -> str:
    """The README's exit-code paragraph, generated from EXIT_CODES."""
    return "Exit codes: " + "; ".join(f"{code} {what}" for code, what in sorted(EXIT_CODES.items())) + "."


if __name__ == "__main__":  # `python -m phoenix.errors` prints what the README publishes
    print(exit_code_table())
