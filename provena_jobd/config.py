"""Configuration: frozen structs loaded from `jobd.toml`, the environment and CLI overrides.

Precedence, lowest first: built-in defaults, the TOML file, then `JOBD_*` environment
variables and command-line options (the CLI passes both in as overrides). Unknown keys are
errors that name the key.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec

from .errors import ConfigError
from .models import JobType

Durability = Literal["full", "normal"]
AuthMode = Literal["none"]
T = TypeVar("T")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8421
DEFAULT_DB = "jobd.db"


class ServerSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where jobd listens and how much it accepts."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    insecure: bool = False
    max_body_bytes: int = 1024 * 1024
    shutdown_grace_s: float = 10.0


class StorageSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The SQLite database and how hard it tries to keep an acknowledged write."""

    db: str = DEFAULT_DB
    durability: Durability = "full"


class QueueSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Leases, the rescuer and retry back-off."""

    lease_s: float = 30.0
    rescue_interval_s: float = 5.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 300.0
    poll_interval_s: float = 1.0


class AuthSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Who a request acts as. Only `none` exists so far: one local user with every role."""

    mode: AuthMode = "none"
    local_user: str = "local"


class PoolSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How one job type's workers scale and run jobs."""

    max_workers: int = 3
    concurrency: int = 1
    cold_start_s: float = 0.0
    idle_timeout_s: float = 120.0
    timeout_s: float = 300.0
    max_attempts: int = 3


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything jobd can be configured with."""

    server: ServerSettings = ServerSettings()
    storage: StorageSettings = StorageSettings()
    queue: QueueSettings = QueueSettings()
    auth: AuthSettings = AuthSettings()
    pool: PoolSettings = PoolSettings()
    pools: dict[JobType, PoolSettings] = {}

    def pool_for(self, job_type: JobType) -> PoolSettings:
        """The settings in force for one job type's pool."""
        return self.pools.get(job_type, self.pool)


def load(
    path: str | Path | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Build the settings from a TOML file and overrides (the CLI's options and `JOBD_*`)."""
    raw: dict[str, Any] = _read_toml(Path(path)) if path is not None else {}
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)
    return from_dict(raw)


def from_dict(raw: dict[str, Any]) -> Settings:
    """Validate a settings mapping (as TOML would give it) into `Settings`."""
    raw = dict(raw)
    if "pools" in raw:
        raise ConfigError("unknown key `pools` (per-type settings go in [pool.<JOB_TYPE>])")
    pool_table = raw.pop("pool", {})
    if not isinstance(pool_table, dict):
        raise ConfigError("[pool] must be a table")
    defaults = {k: v for k, v in pool_table.items() if not isinstance(v, dict)}
    per_type = {k: v for k, v in pool_table.items() if isinstance(v, dict)}
    unknown_types = sorted(set(per_type) - {t.value for t in JobType})
    if unknown_types:
        known = ", ".join(t.value for t in JobType)
        raise ConfigError(f"unknown job type [pool.{unknown_types[0]}] (known: {known})")
    pool = _convert(defaults, PoolSettings, "pool")
    pools = {
        JobType(name): _convert({**defaults, **values}, PoolSettings, f"pool.{name}")
        for name, values in per_type.items()
    }
    base = _convert(raw, Settings, "")
    settings = msgspec.structs.replace(base, pool=pool, pools=pools)
    _check(settings)
    return settings


def _convert(value: dict[str, Any], kind: type[T], where: str) -> T:
    """Validate one table, with an error that names the TOML key."""
    try:
        return msgspec.convert(value, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_describe(exc, where)) from None


def _describe(exc: msgspec.ValidationError, where: str) -> str:
    """Say which key is wrong, as it is written in the TOML file."""
    message, _, path = str(exc).partition(" - at `$")
    path = path.rstrip("`").lstrip(".")
    key = ".".join(part for part in (where, path) if part)
    unknown = re.match(r"Object contains unknown field `([^`]+)`", message)
    if unknown:
        table = f" in [{key}]" if key else ""
        return f"unknown key `{unknown.group(1)}`{table}"
    return f"{key}: {message}" if key else message


def _check(settings: Settings) -> None:
    """Reject values that parse but cannot work."""
    pools = {"pool": settings.pool, **{f"pool.{k}": v for k, v in settings.pools.items()}}
    for name, pool in pools.items():
        if pool.max_workers < 1:
            raise ConfigError(f"{name}.max_workers must be at least 1")
        if pool.concurrency < 1:
            raise ConfigError(f"{name}.concurrency must be at least 1")
        if pool.max_attempts < 1:
            raise ConfigError(f"{name}.max_attempts must be at least 1")
        for key in ("cold_start_s", "idle_timeout_s"):
            if getattr(pool, key) < 0:
                raise ConfigError(f"{name}.{key} must not be negative")
        if pool.timeout_s <= 0:
            raise ConfigError(f"{name}.timeout_s must be positive")
    if not 0 <= settings.server.port <= 65535:
        raise ConfigError("server.port must be between 0 and 65535")
    if settings.queue.lease_s <= 0:
        raise ConfigError("queue.lease_s must be positive")


def _read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file, with one-line errors."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this machine."""
    return host in {"localhost", "::1"} or host.startswith("127.")
