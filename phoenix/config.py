"""One settings object for the whole project.

Read, in order of precedence, from `PHOENIX_*` environment variables, then the TOML
file named by `PHOENIX_CONFIG` (default `phoenix.toml` in the working directory, if
present), then the defaults below. Nested sections use `__` in environment
variables: `PHOENIX_RBD__POOL=phoenix`. Unknown keys and wrong values are one-line
`ConfigError`s naming the key and the accepted values.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from phoenix.errors import ConfigError
from phoenix.names import TTL_PATTERN

_STRICT = ConfigDict(extra="forbid")


class LocalStorageSettings(BaseModel):
    """btrfs on a sparse loop file (the embedded default)."""

    model_config = _STRICT
    # Where the btrfs pool is mounted; default `<home>/btrfs`.
    mount: Path | None = None
    # Size of the sparse backing file; only allocated as written.
    size: str = "20G"


class RbdSettings(BaseModel):
    """Ceph RBD through librbd."""

    model_config = _STRICT
    pool: str = "phoenix"
    # ceph.conf of the cluster; default: the local stack's `<home>/ceph/ceph.conf`.
    conf: Path | None = None
    cluster_id: str = "phoenix-local"
    # Seconds before a connection attempt to the cluster is given up.
    connect_timeout: int = Field(default=5, ge=1, le=300)
    # Seconds an operation on the cluster (librbd, and the unmount, loop and rbd-fuse steps of
    # a detach) may take before it fails with one line: a stalled OSD blocks them all.
    op_timeout: int = Field(default=60, ge=1, le=3600)
    # Local stack only: memstore keeps data in RAM; bluestore uses a sparse file.
    objectstore: Literal["memstore", "bluestore"] = "memstore"
    osd_size: str = "8G"
    # Local stack only: where the single monitor listens (tests use another port).
    mon_port: int = Field(default=6789, ge=1, le=65535)


class KubernetesSettings(BaseModel):
    model_config = _STRICT
    kubeconfig: Path | None = None
    context: str | None = None
    # Empty: the image the local cluster's node announces (built here, `phoenix stack up
    # --kubernetes`) when volumes are local, else the registry's `mariadb:10.11`.
    db_image: str = ""
    # The uid/gid of mysql inside db_image: a datadir on the node (local volumes) is chowned to it.
    db_uid: int = Field(default=999, ge=0)
    # Where a database pod's datadir comes from: "csi" (ceph-csi maps the RBD image on any node:
    # production), "local" (Phoenix attaches the image on this host, which is the cluster's node,
    # and gives the pod a `local` PV), "auto" (csi when ceph-csi's driver is registered, else local).
    volumes: Literal["auto", "csi", "local"] = "auto"
    base_domain: str = "phoenix.localhost"
    storage_class: str = ""
    fs_type: str = "ext4"
    node_stage_secret: str = "csi-rbd-secret"
    node_stage_secret_namespace: str = "rook-ceph"
    # Environments live in namespaces `<namespace_prefix><id>`; the worker runs in
    # `worker_namespace` (the breeder's NetworkPolicy lets it in to stream the restore).
    namespace_prefix: str = "phoenix-"
    worker_namespace: str = "phoenix"
    # Seconds per API request; an unreachable API server fails within this, clearly.
    request_timeout: float = Field(default=8.0, gt=0, le=120)
    # Optional application deployed beside each environment's database (with an
    # Ingress at `<id>.<base_domain>`); none when `app_image` is empty.
    app_image: str = ""
    app_port: int = Field(default=8080, ge=1, le=65535)
    app_env: dict[str, str] = Field(default_factory=dict)
    # Local control plane only (tests): kube-apiserver and etcd ports on 127.0.0.1.
    api_port: int = Field(default=6443, ge=1, le=65535)
    etcd_port: int = Field(default=2379, ge=1, le=65535)


class PrefectSettings(BaseModel):
    model_config = _STRICT
    host: str = "127.0.0.1"
    port: int = Field(default=4200, ge=1, le=65535)
    work_pool: str = "phoenix"
    # Seconds a flow run may wait in PENDING or SCHEDULED, with no live worker in its pool to
    # start it, before the reaper marks it Crashed (an abandoned CI run).
    abandoned_after: int = Field(default=900, ge=1, le=7 * 86400)


class Settings(BaseSettings):
    """Everything configurable. See `phoenix.example.toml` for a documented example."""

    model_config = SettingsConfigDict(
        env_prefix="PHOENIX_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    home: Path = Path(".phoenix")
    storage: Literal["local", "rbd"] = "local"
    runtime: Literal["local", "kubernetes"] = "local"
    source: str | None = None
    rules: Path | None = None
    database: str = "app"
    keep_generations: int = Field(default=2, ge=1, le=100)
    # Connections a mysqldump-format dump is restored over (1: one `mariadb` client).
    restore_jobs: int = Field(default=2, ge=1, le=16)
    # Anonymize a mysqldump-format dump's rows while they are restored (anonymization/inline.py);
    # false: restore first, then rewrite every table (the only way for other sources).
    anonymize_inline: bool = True
    default_ttl: str = Field(default="8h", pattern=TTL_PATTERN)  # e.g. 30m, 8h, 3d
    # Image size for a breeder (and so every golden); sparse, only written blocks count.
    image_size: str = "20G"
    anon_key: SecretStr | None = None
    # The password of a `mysql://` source's user (never in the URL, never a flow parameter).
    source_password: SecretStr | None = None
    # Where prebuilt Kubernetes binaries are (default: build them, cached by version).
    kube_bin: Path | None = None
    # Fault injection, for the invariant tests only: kill the cycle after a step; skip
    # clean-up steps (comma-separated); plant originals on the stopped breeder ("file" |
    # "deleted-file"). The forensic gate must catch what they leave.
    fault_kill_after: str | None = None
    fault_skip: str = ""
    fault_plant: Literal["file", "deleted-file"] | None = None
    local: LocalStorageSettings = LocalStorageSettings()
    rbd: RbdSettings = RbdSettings()
    kubernetes: KubernetesSettings = KubernetesSettings()
    prefect: PrefectSettings = PrefectSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))

    # ---- derived paths -------------------------------------------------------
    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().absolute()

    @property
    def btrfs_mount(self) -> Path:
        return (self.local.mount or self.home_dir / "btrfs").absolute()

    @property
    def ceph_conf(self) -> Path:
        return (self.rbd.conf or self.home_dir / "ceph" / "ceph.conf").absolute()

    @property
    def prefect_url(self) -> str:
        return f"http://{self.prefect.host}:{self.prefect.port}/api"

    @property
    def rules_path(self) -> Path:
        if self.rules is not None:
            return self.rules
        return Path(__file__).resolve().parent.parent / "anonymization" / "rules" / "shop.yaml"

    def anon_key_bytes(self) -> bytes:
        """The anonymization key; a one-line error if it is not configured."""
        if self.anon_key is None or not self.anon_key.get_secret_value():
            raise ConfigError("PHOENIX_ANON_KEY is not set: export a long random secret (e.g. `openssl rand -hex 32`)")
        return self.anon_key.get_secret_value().encode()


class _TomlSource(PydanticBaseSettingsSource):
    """Reads `phoenix.toml` (or `$PHOENIX_CONFIG`); a missing default file is fine."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls)
        explicit = os.environ.get("PHOENIX_CONFIG")
        path = Path(explicit) if explicit else Path("phoenix.toml")
        self._data: dict[str, Any] = {}
        if not path.exists():
            if explicit:
                raise ConfigError(f"PHOENIX_CONFIG={path}: no such file; unset it or point it at a phoenix.toml")
            return
        try:
            self._data = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc}); fix the file") from None

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def parse_size(text: str) -> int:
    """'20G', '512M', '1T', '4096' → bytes (binary units)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = str(text).strip().upper().removesuffix("B").removesuffix("I")
    try:
        return int(float(t[:-1]) * units[t[-1]]) if t and t[-1] in units else int(t)
    except (ValueError, KeyError):
        raise ConfigError(f"size {text!r}: use a number with K, M, G or T, e.g. 20G") from None


def _describe(err: ValidationError) -> str:
    first = err.errors()[0]
    key = ".".join(str(p) for p in first["loc"]) or "?"
    if first["type"] == "extra_forbidden":
        return f"unknown configuration key '{key}': remove it or check the spelling (see phoenix.example.toml)"
    ctx = first.get("ctx") or {}
    if ctx.get("pattern") == TTL_PATTERN:
        return (
            f"configuration key '{key}': {first.get('input')!r} is not a ttl; expected a number and a unit "
            "(s, m, h, d, w), e.g. 30m, 8h, 3d"
        )
    if "expected" in ctx:
        return f"configuration key '{key}': {first.get('input')!r} is not accepted; expected {ctx['expected']}"
    return f"configuration key '{key}': {first['msg']}"


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, turning validation errors into one-line ConfigErrors."""
    try:
        return Settings(**overrides)
    except ValidationError as err:
        raise ConfigError(_describe(err)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (cached; tests call `get_settings.cache_clear()`)."""
    return load_settings()
