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
from typing import Any, TypeVar

import msgspec

from . import cron
from .catalog import JobCatalog
from .config_auth import check_auth
from .config_errors import describe
from .errors import ConfigError
from .redaction import REDACTED, Secret, redact, secret_fields, secret_values, shown_url
from .settings import (
    DEFAULT_DB,
    DEFAULT_HOST,
    DEFAULT_PORT,
    ApiToken,
    AuthMode,
    AuthSettings,
    CorsSettings,
    Durability,
    EmailSettings,
    HandlerKind,
    JobRoute,
    MetricsSettings,
    PoolSettings,
    QueueSettings,
    ReportSettings,
    RetentionSettings,
    RoleNames,
    ScheduleSettings,
    ServerSettings,
    Settings,
    StorageSettings,
)

# Re-exported: callers read the settings structs and REDACTED from this module.
__all__ = [
    "DEFAULT_DB",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "REDACTED",
    "ApiToken",
    "AuthMode",
    "AuthSettings",
    "CorsSettings",
    "Durability",
    "EmailSettings",
    "HandlerKind",
    "JobRoute",
    "MetricsSettings",
    "PoolSettings",
    "QueueSettings",
    "ReportSettings",
    "RetentionSettings",
    "RoleNames",
    "ScheduleSettings",
    "Secret",
    "ServerSettings",
    "Settings",
    "StorageSettings",
]

T = TypeVar("T")


# Keys that name files or folders: relative ones in jobd.toml are relative to its folder.
PATH_KEYS = {
    "storage": ("db",),
    "email": ("outbox",),
    "reports": ("folder",),
    "auth": ("public_key_file", "jwks_file"),
}


# On PostgreSQL a lost node's jobs wait for its lease to run out and the next sweep of a
# live node's rescuer: keep both short (a dead node costs about lease_s + rescue_interval_s).
POSTGRES_QUEUE_DEFAULTS = {"lease_s": 10.0, "rescue_interval_s": 2.0}


def is_postgres_url(db: str) -> bool:
    """Whether `db` names a PostgreSQL database (several nodes) rather than a SQLite file."""
    return db.startswith(("postgresql://", "postgres://"))


def sqlite_path(db: str) -> str:
    """The file of a SQLite `db`: a path, or a `sqlite:///path` URL."""
    return db.removeprefix("sqlite:///") if db.startswith("sqlite:///") else db


def working_folder(db: str) -> str:
    """Where jobd keeps its working files by default: `<db>-files`, beside the database.

    One folder next to the database (`jobd.db-files/outbox`, `.../reports`), so a server
    started in a checkout leaves nothing else in the working directory, and an ignore rule
    for `jobd.db*` covers everything jobd writes.
    """
    if is_postgres_url(db):
        return "jobd-files"  # no database file to sit beside: the working directory
    return f"{sqlite_path(db)}-files"


def load(
    path: str | Path | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Build the settings from a TOML file and overrides (the CLI's options and `JOBD_*`).

    Relative paths in the file are taken relative to the file's folder, so a server started
    from another directory uses the same database; paths in overrides are relative to the
    current directory, as a command line's are.
    """
    raw: dict[str, Any] = {}
    if path is not None:
        raw = _read_toml(Path(path))
        _anchor_paths(raw, Path(path).resolve().parent)
    for section, values in (overrides or {}).items():
        _check_shadowed(raw.get(section), values, section)
        raw.setdefault(section, {}).update(values)
    return from_dict(raw)


def _check_shadowed(table: Any, overrides: Mapping[str, Any], section: str) -> None:
    """Type-check the file's values that `overrides` replace: a wrong one (`port = "8421"`)
    is an error even while `JOBD_PORT` is set, not a mistake that shows only without it."""
    if table is None:
        return
    if not isinstance(table, dict):
        raise ConfigError(f"[{section}] must be a table")
    shadowed = {key: table[key] for key in overrides if key in table}
    if shadowed:
        _convert(shadowed, _SECTION_TYPES[section], section)


# Each `[section]` of the file and the struct it becomes.
_SECTION_TYPES: dict[str, Any] = {
    field.name: field.type for field in msgspec.structs.fields(Settings)
}


def _anchor_paths(raw: dict[str, Any], folder: Path) -> None:
    """Make the relative file and folder paths of a TOML file relative to `folder`."""
    for section, keys in PATH_KEYS.items():
        table = raw.get(section)
        if not isinstance(table, dict):
            continue  # not a table: validation names the problem
        for key in keys:
            value = table.get(key)
            if isinstance(value, str) and value.startswith("sqlite:///"):
                value = sqlite_path(value)
            if isinstance(value, str) and "://" in value:
                continue  # a database URL, not a file (_check_db refuses one jobd lacks)
            if isinstance(value, str) and value and not Path(value).is_absolute():
                table[key] = str(folder / value)


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
    jobs = {
        name: _convert(table, JobRoute, f"jobs.{name}")
        for name, table in _tables(raw.pop("jobs", {}), "jobs").items()
    }
    _check_jobs(jobs)
    catalog = JobCatalog(jobs)
    unknown_types = sorted(set(per_type) - set(catalog.job_types))
    if unknown_types:
        known = ", ".join(catalog.job_types)
        raise ConfigError(f"unknown job type [pool.{unknown_types[0]}] (known: {known})")
    pool = _convert(defaults, PoolSettings, "pool")
    pools = {
        name: _convert({**defaults, **values}, PoolSettings, f"pool.{name}")
        for name, values in per_type.items()
    }
    storage, queue = raw.get("storage"), raw.get("queue", {})
    if isinstance(storage, dict) and is_postgres_url(str(storage.get("db", ""))):
        if isinstance(queue, dict):  # else validation names the problem
            raw["queue"] = {**POSTGRES_QUEUE_DEFAULTS, **queue}
    base = _convert(raw, Settings, "")
    settings = msgspec.structs.replace(base, pool=pool, pools=pools, jobs=jobs)
    _check(settings)
    return _with_working_folder(settings)


def _with_working_folder(settings: Settings) -> Settings:
    """The outbox and reports folders not configured go beside the database."""
    files = Path(working_folder(settings.storage.db))
    email, reports = settings.email, settings.reports
    if not email.outbox:
        email = msgspec.structs.replace(email, outbox=str(files / "outbox"))
    if not reports.folder:
        reports = msgspec.structs.replace(reports, folder=str(files / "reports"))
    return msgspec.structs.replace(settings, email=email, reports=reports)


def _tables(value: Any, where: str) -> dict[str, dict[str, Any]]:
    """A TOML table of tables, e.g. [jobs.SEND_EMAIL], [jobs.MY_JOB]."""
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise ConfigError(f"[{where}] must contain only tables, e.g. [{where}.SEND_EMAIL]")
    return value


def _check_jobs(jobs: dict[str, JobRoute]) -> None:
    """Each route names what its handler needs; new sub types name their job type."""
    builtin = JobCatalog()
    for name, route in jobs.items():
        where = f"[jobs.{name}]"
        known_type = builtin.job_type_of(name)
        if known_type is None and route.job_type is None:
            raise ConfigError(
                f"{where}: {name} is not a sub type of the reference; "
                'declare it with job_type = "..."'
            )
        if known_type is not None and route.job_type not in (None, known_type):
            raise ConfigError(f"{where}: {name} belongs to job type {known_type}")
        if known_type is None and route.handler == "builtin":
            raise ConfigError(f'{where}: a new sub type needs handler = "python" or "webhook"')
        if route.handler == "python" and not re.fullmatch(r"[\w.]+:[\w]+", route.callable or ""):
            raise ConfigError(f'{where}: handler = "python" needs callable = "module:function"')
        if route.handler == "webhook" and not (route.url or "").startswith(("http://", "https://")):
            raise ConfigError(f'{where}: handler = "webhook" needs url = "http(s)://..."')
        if route.timeout_s <= 0:
            raise ConfigError(f"{where}: timeout_s must be positive")


def _convert(value: dict[str, Any], kind: type[T], where: str) -> T:
    """Validate one table, with an error that names the TOML key.

    Strict: a quoted number (`cold_start_s = "5"`) is refused like `"five"`, not coerced, so
    a value is used only as it is written.
    """
    try:
        return msgspec.convert(value, kind, strict=True)
    except msgspec.ValidationError as exc:
        raise ConfigError(describe(exc, kind, where)) from None


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
        if (pool.cwd or pool.env) and not pool.command:
            raise ConfigError(f"{name}: cwd and env need command = [...]")
        for key in ("max_starts_per_s", "max_starts_per_min"):
            if getattr(pool, key) is not None and getattr(pool, key) < 1:
                raise ConfigError(f"{name}.{key} must be at least 1")
    _check_db(settings.storage.db)
    if not 0 <= settings.server.port <= 65535:
        raise ConfigError("server.port must be between 0 and 65535")
    if settings.queue.lease_s <= 0:
        raise ConfigError("queue.lease_s must be positive")
    if settings.server.shutdown_grace_s < 0:
        raise ConfigError("server.shutdown_grace_s must not be negative")
    _check_retention(settings.retention)
    _check_schedules(settings)
    if settings.metrics.listen is not None:
        metrics_address(settings.metrics.listen)
    check_auth(settings.auth)
    if settings.cors.allowed_origin_regex is not None:
        try:
            re.compile(settings.cors.allowed_origin_regex)
        except re.error as exc:
            raise ConfigError(
                f"cors.allowed_origin_regex is not a regular expression: {exc}"
            ) from None


def _check_db(db: str) -> None:
    """A database URL names a backend jobd has (else `mysql://x/y` was taken for a path)."""
    scheme = re.match(r"([A-Za-z][\w+.-]*)://", db)
    if scheme and not is_postgres_url(db) and not db.startswith("sqlite:///"):
        raise ConfigError(
            f"the database {shown_url(db)!r} is a {scheme.group(1)}:// URL, which jobd does not "
            "support: use a SQLite path, sqlite:///relative/path, sqlite:////absolute/path or "
            "postgresql://user@host:5432/name"
        )


def _check_schedules(settings: Settings) -> None:
    """Names unique, cron expressions valid; the job itself is checked at startup like a
    launch (see workers/scheduler.py)."""
    seen: set[str] = set()
    for schedule in settings.schedules:
        where = f"schedules[{schedule.name!r}]"
        if not schedule.name or schedule.name in seen:
            raise ConfigError(f"{where}: each schedule needs a name of its own")
        seen.add(schedule.name)
        problem = cron.check(schedule.cron)
        if problem is not None:
            raise ConfigError(f"{where}.cron {schedule.cron!r} is not a cron expression: {problem}")


def _check_retention(retention: RetentionSettings) -> None:
    """Pruning needs a sane pace."""
    if retention.keep_finished_s != "forever" and retention.keep_finished_s < 0:
        raise ConfigError('retention.keep_finished_s must be 0 or more (or "forever")')
    if retention.interval_s <= 0:
        raise ConfigError("retention.interval_s must be positive")
    if retention.batch_size < 1:
        raise ConfigError("retention.batch_size must be at least 1")


def metrics_address(listen: str) -> tuple[str, int]:
    """`metrics.listen` as (host, port); a ConfigError names the expected form."""
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(
            f'metrics.listen must be "host:port", e.g. "127.0.0.1:9464" (got {listen!r})'
        )
    return host.strip("[]"), int(port)


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


def flatten(settings: Settings) -> list[tuple[str, str]]:
    """The effective settings as `section.key` / value pairs, secrets redacted: a secret's
    field, and a secret's value written into another setting (as the log redacts it)."""
    pairs: list[tuple[str, str]] = []
    values = secret_values(settings)

    def hide(prefix: str, value: Any) -> None:
        if isinstance(value, dict):  # a table of secrets: its keys show, its values do not
            for key in value:
                pairs.append((f"{prefix}.{key}", REDACTED))
        else:
            pairs.append((prefix, REDACTED if value else str(msgspec.to_builtins(value))))

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, msgspec.Struct):
            secret = secret_fields(type(value))
            for name in value.__struct_fields__:
                shown = "pool" if name == "pools" and not prefix else name  # as in the TOML
                key = f"{prefix}.{shown}" if prefix else shown
                (hide if name in secret else walk)(key, getattr(value, name))
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}", item)
        elif isinstance(value, str):
            pairs.append((prefix, redact(shown_url(value), values)))  # a URL's password too
        else:
            pairs.append((prefix, redact(str(msgspec.to_builtins(value)), values)))

    walk("", settings)
    return pairs
