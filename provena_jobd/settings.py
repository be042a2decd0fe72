"""The settings structs: one frozen struct per `jobd.toml` section, with its defaults (loading,
checking and precedence are `config.py`'s)."""

from __future__ import annotations

from typing import Any, Literal, TypeVar

import msgspec

from .catalog import JobCatalog
from .redaction import Secret

Durability = Literal["full", "normal"]
AuthMode = Literal["none", "jwt", "token"]
HandlerKind = Literal["builtin", "python", "webhook"]
T = TypeVar("T")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8421
DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"  # where clients look without --url
DEFAULT_DB = "jobd.db"


class ServerSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where jobd listens and how much it accepts."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    insecure: bool = False
    max_body_bytes: int = 1024 * 1024
    max_payload_depth: int = 32
    shutdown_grace_s: float = 10.0
    # A connection that completes no request for this long is closed (idle keep-alive
    # connections, and slowloris clients that never finish their headers).
    idle_timeout_s: float = 60.0
    max_event_streams: int = 256  # more open event streams get 503
    event_buffer: int = 1000  # changes queued for one stream client; past it, it is cut off


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
    idempotency_ttl_s: float = 24 * 3600.0  # how long a launch's Idempotency-Key is kept
    max_delay_s: float = 366 * 24 * 3600.0  # the furthest ahead a delayed launch may ask


class RoleNames(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which realm role grants each right (the reference's names by default)."""

    read: str = "job-service-read"
    write: str = "job-service-write"
    admin: str = "job-service-admin"
    worker: str = "job-service-worker"


class ApiToken(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A static API token, kept only as the SHA-256 of the token (`jobd token create`)."""

    sha256: Secret[str]
    user: str
    roles: list[str] = []


class AuthSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Who a request acts as, and what it may do."""

    mode: AuthMode = "none"
    local_user: str = "local"
    public_key_file: str | None = None
    realm_url: str | None = None
    jwks_file: str | None = None
    issuer: str | None = None
    audience: str | None = None
    service_accounts: list[str] = []
    # The reference lets any read+write caller launch for any `username` (registry-api does,
    # for its end users); true restricts that to admins and `service_accounts`.
    restrict_on_behalf: bool = False
    roles: RoleNames = RoleNames()
    tokens: list[ApiToken] = []  # each one's hash is secret; its user and roles are not


class CorsSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Browser origins allowed to call the API (none by default)."""

    allowed_origins: list[str] = []
    # An origin that matches this in full is allowed too, as the reference's
    # `allow_origin_regex` (e.g. every https://<ui>.<domain> of a Provena deployment).
    allowed_origin_regex: str | None = None
    # Headers a browser may send; "*" allows whatever its preflight asks for (the reference;
    # Sentry adds sentry-trace and baggage).
    allowed_headers: list[str] = msgspec.field(default_factory=lambda: ["*"])


class PoolSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How one job type's workers scale and run jobs."""

    max_workers: int = 3
    concurrency: int = 1
    cold_start_s: float = 0.0
    idle_timeout_s: float = 120.0
    timeout_s: float = 300.0
    max_attempts: int = 3
    # Run this type's jobs outside jobd, over the worker protocol (`/jobs/worker/*`):
    # `external` for workers you run yourself, `command` for processes jobd starts.
    external: bool = False
    command: list[str] = []
    cwd: str | None = None
    env: Secret[dict[str, str]] = {}  # may hold the workers' token: values never shown
    # Start limits, cluster-wide (counted in the database): jobs claimed per second / minute.
    max_starts_per_s: int | None = None
    max_starts_per_min: int | None = None


class JobRoute(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where one sub type's jobs go: jobd's built-in handler, a Python callable or a webhook."""

    handler: HandlerKind = "builtin"
    job_type: str | None = None  # declares a new sub type of this job type
    callable: str | None = None  # python: "package.module:function"
    url: str | None = None  # webhook: jobd POSTs the job here
    timeout_s: float = 30.0  # webhook: how long to wait for the answer


class EmailSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """SEND_EMAIL: an SMTP server, or else an outbox folder of .eml files."""

    smtp_host: str | None = None
    smtp_port: int = 25
    starttls: bool = False
    username: str | None = None
    password: Secret[str | None] = None
    from_address: str = "jobd@localhost"
    outbox: str = ""  # default: working_folder(db)/outbox


class ReportSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """GENERATE_REPORT: where reports are written and how long their links work."""

    folder: str = ""  # default: working_folder(db)/reports
    url_ttl_s: float = 10_800.0
    public_url: str | None = None  # base URL in report links; default: the URL jobd serves


class RetentionSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How long finished jobs (and what they recorded) are kept before they are pruned."""

    # Seconds after a job finished; 0 or "forever" keeps everything.
    keep_finished_s: float | Literal["forever"] = 30 * 24 * 3600.0
    interval_s: float = 60.0  # how often a pruning pass runs
    batch_size: int = 100  # jobs deleted per transaction, so writes never wait long

    @property
    def enabled(self) -> bool:
        """Whether anything is ever pruned."""
        return self.keep_finished_s != "forever" and self.keep_finished_s > 0


class MetricsSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Prometheus metrics: always at `/metrics` (read role), optionally on their own port."""

    # "host:port" of a separate listener that serves /metrics without auth, for a scraper.
    listen: str | None = None


class ScheduleSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A periodic job (`[[schedules]]`): launched at each due time of a cron expression (UTC)."""

    name: str
    cron: str
    job_type: str
    job_sub_type: str
    user: str
    payload: dict[str, Any] = {}
    # Due times missed while jobd was down: "skip" them, or "run_once" for all of them.
    missed: Literal["skip", "run_once"] = "skip"


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Everything jobd can be configured with."""

    server: ServerSettings = ServerSettings()
    storage: StorageSettings = StorageSettings()
    queue: QueueSettings = QueueSettings()
    auth: AuthSettings = AuthSettings()
    cors: CorsSettings = CorsSettings()
    email: EmailSettings = EmailSettings()
    reports: ReportSettings = ReportSettings()
    retention: RetentionSettings = RetentionSettings()
    metrics: MetricsSettings = MetricsSettings()
    jobs: dict[str, JobRoute] = {}
    pool: PoolSettings = PoolSettings()
    pools: dict[str, PoolSettings] = {}
    schedules: list[ScheduleSettings] = []

    def pool_for(self, job_type: str) -> PoolSettings:
        """The settings in force for one job type's pool."""
        return self.pools.get(job_type, self.pool)

    def catalog(self) -> JobCatalog:
        """Every job type and sub type, the reference's and those declared in [jobs]."""
        return JobCatalog(self.jobs)
