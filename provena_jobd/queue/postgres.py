"""The PostgreSQL backend of the job store: several jobd nodes on one database.

Why asyncpg: it speaks PostgreSQL's binary protocol natively on asyncio (no thread per
connection, as psycopg's sync API or aiosqlite need), has LISTEN/NOTIFY callbacks built in,
and is the fastest maintained Python driver, which matters for a queue whose every job is a
few statements.

Claims take rows with `FOR UPDATE SKIP LOCKED`, so nodes claiming at once never wait on or
take each other's jobs. Every transition is guarded by status and attempt, as on SQLite.
Triggers (migration 0004) NOTIFY the ids of the jobs each statement changed; every node
LISTENs, so the change feed (event streams, long-polling fetches) sees every node's changes,
and only after they are committed (PostgreSQL delivers a NOTIFY at commit).

This module owns the connections (the pool, the LISTEN connection, migrations) and the
writes, each a group-commit step (postgres_steps.py); every query is `PostgresReads`'
(postgres_reads.py), run through `_fetch`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import asyncpg

from ..errors import StorageError
from ..models import JobStatus
from ..redaction import shown_url
from . import postgres_steps as steps
from .dialect import migrations
from .group_commit import GroupCommit, Step
from .postgres_flow import (
    claim_flow_step,
    fire_schedule_step,
    launch_once_step,
    set_paused_step,
)
from .postgres_prune import prune_step
from .postgres_reads import PostgresReads
from .store import (
    CancelOutcome,
    Claim,
    ClaimedJob,
    Finish,
    FlowClaim,
    FlowClaimed,
    KeyedLaunch,
    LaunchOutcome,
    Lease,
    NewJob,
    Pause,
    Prune,
    Pruned,
    Requeue,
    Rescue,
    Rescued,
    ScheduleFire,
)

log = logging.getLogger(__name__)

CHANGES = "jobd_changes"  # NOTIFY channel: comma-separated ids of changed jobs
WAITING = "jobd_waiting"  # NOTIFY channel: a job type that has new waiting jobs
# Two nodes starting at once migrate one after the other.
_MIGRATION_LOCK = 0x6A6F6264  # "jobd"

# What a dropped or cut connection raises (a network cut, a restart, pg_terminate_backend).
DISCONNECTED = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.exceptions.OperatorInterventionError,
)
Connection = Any  # asyncpg.Connection (or a pool's proxy of one); asyncpg has no type stubs


def _ignore(session_ids: Iterable[str]) -> None:
    """The default change listener."""


def _ignore_type(job_type: str) -> None:
    """The default wake-up listener."""


class PostgresStore(PostgresReads):
    """A `JobStore` on a PostgreSQL database, shared by any number of jobd nodes: the
    connections and writes here, the queries in `PostgresReads`."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = url
        self.pool_size = pool_size
        self._pool: Any = None  # asyncpg.Pool
        self._listener: Any = None  # asyncpg.Connection kept for LISTEN
        self._relisten: asyncio.Task[None] | None = None
        self._closing = False
        self._group: GroupCommit[Connection] = GroupCommit(self._transaction)
        self._secrets: dict[str, str] = {}  # read once (see `secret`)
        # Told the ids of the jobs each committed write changed, on any node.
        self.on_change: Callable[[Iterable[str]], None] = _ignore
        # Told a job type when any node made jobs of it claimable (wake-ups across nodes).
        self.on_waiting: Callable[[str], None] = _ignore_type
        # This node's name, recorded with each attempt it claims (set by `worker_slots`).
        self.node: str | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, migrate (under an advisory lock), and start listening."""
        try:
            # `jobd.node` names this node to the attempt history's trigger (migration 0006).
            settings = {"jobd.node": self.node} if self.node else None
            self._pool = await asyncpg.create_pool(
                self.url, min_size=2, max_size=self.pool_size, server_settings=settings
            )
            async with self._pool.acquire() as connection:
                await _migrate(connection)
            await self._listen()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            await self.close()
            raise StorageError(f"cannot use database {shown_url(self.url)}: {exc}") from None
        except ValueError:
            # asyncpg's reading of a malformed URL; its words may quote part of the password.
            await self.close()
            raise StorageError(
                f"cannot use database {shown_url(self.url)}: the URL is not valid (a password "
                "with / # ? @ : must be percent-encoded)"
            ) from None
        except BaseException:
            await self.close()  # a newer schema (StorageError), a cancel: no pool left open
            raise

    async def _listen(self) -> None:
        """Open the connection that LISTENs for other nodes' (and our own) changes."""
        listener = await asyncpg.connect(self.url)
        listener.add_termination_listener(self._listener_lost)
        await listener.add_listener(CHANGES, self._changed)
        await listener.add_listener(WAITING, self._waiting)
        self._listener = listener

    def _listener_lost(self, connection: Any) -> None:
        """The LISTEN connection dropped: reconnect in the background. Meanwhile the pools
        find work by polling (`poll_interval_s`), and writes go on over the pool."""
        if self._listener is connection and not self._closing:
            self._listener = None
            log.warning(
                "lost the database's change notices; reconnecting", extra={"action": "listen_lost"}
            )
            self._relisten = asyncio.create_task(self._reconnect(), name="pg-listen")

    async def _reconnect(self) -> None:
        delay = 0.1
        while not self._closing:
            try:
                await self._listen()
            except (*DISCONNECTED, asyncpg.PostgresError):
                await asyncio.sleep(delay)  # not a time read: a pause between tries
                delay = min(delay * 2, 5.0)
                continue
            log.info("listening to the database again", extra={"action": "listen_restored"})
            return

    async def close(self) -> None:
        """Wait for queued writes, then disconnect."""
        self._closing = True
        if self._relisten is not None:
            self._relisten.cancel()
        await self._group.idle()
        if self._listener is not None:
            listener, self._listener = self._listener, None
            await listener.close()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def maintain(self) -> None:
        """Nothing to do: PostgreSQL's autovacuum does the housekeeping."""

    async def idle(self) -> None:
        """Wait until every queued write is committed (tests use it instead of sleeping)."""
        await self._group.idle()

    @property
    def connections(self) -> Any:
        """The connection pool (asyncpg.Pool), for the cluster's worker slots."""
        if self._pool is None:
            raise StorageError("the job store is not open")
        return self._pool

    @property
    def writer(self) -> GroupCommit[Connection]:
        """The group commit (its counters show how well writes batch)."""
        return self._group

    def _changed(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        self.on_change(payload.split(","))

    def _waiting(self, connection: Any, pid: int, channel: str, payload: str) -> None:
        self.on_waiting(payload)

    async def _transaction(self, step: Step[Connection], arguments: Sequence[Any]) -> list[Any]:
        pool = self._pool
        if pool is None:
            raise StorageError("the job store is not open")
        try:
            # A step that runs several statements opens its own transaction; one statement
            # is atomic alone, and saves the BEGIN and COMMIT round trips.
            async with pool.acquire() as connection:
                return await step(connection, arguments)
        except DISCONNECTED as exc:
            # Not retried: whether it committed is unknown, and it was not acknowledged.
            raise StorageError(f"write failed: {exc}") from None

    async def _fetch(self, sql: str, *parameters: Any) -> list[Any]:
        """The rows of one query on a pooled connection (for `PostgresReads`)."""
        pool = self._pool
        if pool is None:
            raise StorageError("the job store is not open")
        try:
            return list(await pool.fetch(sql, *parameters))
        except DISCONNECTED:
            pass  # a dropped connection: a read is safe to try again, on a new one
        try:
            return list(await pool.fetch(sql, *parameters))
        except DISCONNECTED as exc:
            raise StorageError(f"read failed: {exc}") from None

    # -- launching --------------------------------------------------------------------------

    async def launch(self, jobs: list[NewJob]) -> None:
        """Insert jobs as PENDING, durably (committed before this returns)."""
        await self._group.submit(steps.launch_step, jobs)

    # -- the worker's side ------------------------------------------------------------------

    async def claim(self, claim: Claim) -> list[ClaimedJob]:
        """Claim waiting jobs for a worker; other nodes' claims in flight are skipped."""
        claimed: list[ClaimedJob] = await self._group.submit(steps.claim_step, claim)
        return claimed

    async def start(self, lease: Lease, info: str, now: float) -> bool:
        """Mark a held job IN_PROGRESS."""
        started: bool = await self._group.submit(steps.start_step, (lease, info, now))
        return started

    def start_at_once(self, job: ClaimedJob, info: str, now: float) -> bool:
        """Never: another node may cancel or rescue the job meanwhile (await `start`)."""
        return False

    async def finish(self, finish: Finish) -> bool:
        """End an attempt, with what its handler launched and recorded."""
        finished: bool = await self._group.submit(steps.finish_step, finish)
        return finished

    async def requeue(self, requeue: Requeue) -> JobStatus | None:
        """Return a held job to PENDING (FAILED if cancelled while running)."""
        requeued: JobStatus | None = await self._group.submit(steps.requeue_step, requeue)
        return requeued

    async def extend_leases(self, leases: list[Lease], lease_expires_at: float) -> int:
        """Heartbeat a set of held jobs."""
        if not leases:
            return 0
        held: int = await self._group.submit(steps.extend_step, (leases, lease_expires_at))
        return held

    async def rescue(self, rescue: Rescue) -> list[Rescued]:
        """Requeue or fail jobs whose lease expired before the horizon, on any node."""
        rescued: list[Rescued] = await self._group.submit(steps.rescue_step, rescue)
        return rescued

    async def recover(self, now: float, job_types: list[str]) -> list[Rescued]:
        """Nothing: on PostgreSQL other live nodes may hold jobs; leases decide (see docs)."""
        return []

    async def claim_suspect(self, claim: Claim) -> ClaimedJob | None:
        """No suspects on PostgreSQL (crash isolation is SQLite-only)."""
        return None

    async def clear_suspect(self, session_id: str) -> None:
        """No suspects on PostgreSQL."""

    async def count_suspects(self) -> int:
        """No suspects on PostgreSQL."""
        return 0

    async def progress(self, lease: Lease, info: str, fraction: float | None) -> bool:
        """Show progress on a running job."""
        shown: bool = await self._group.submit(steps.progress_step, (lease, info, fraction))
        return shown

    async def cancel(self, session_id: str, info: str, now: float) -> CancelOutcome:
        """End a waiting job, or flag a running one."""
        outcome: CancelOutcome = await self._group.submit(
            steps.cancel_step, (session_id, info, now)
        )
        return outcome

    async def fail_unknown_types(self, known: list[str], info: str, now: float) -> list[str]:
        """Fail unfinished jobs of job types nothing runs any more."""
        failed: list[str] = await self._group.submit(steps.fail_unknown_step, (known, info, now))
        return failed

    async def prune(self, prune: Prune) -> Pruned:
        """Delete old finished batches and workflows whole (see `JobStore.prune`)."""
        pruned: Pruned = await self._group.submit(prune_step, prune)
        return pruned

    async def secret(self, name: str) -> str:
        """A random secret shared by every node, created by whichever asks first (kept once
        read: it never changes)."""
        if name not in self._secrets:
            self._secrets[name] = await self._group.submit(steps.secret_step, name)
        return self._secrets[name]

    # -- scheduling and flow control (issue 14; the steps are in postgres_flow) -------------

    async def launch_once(self, launch: KeyedLaunch) -> LaunchOutcome:
        """Launch unless the idempotency key already did, on any node (see `JobStore`)."""
        outcome: LaunchOutcome = await self._group.submit(launch_once_step, launch)
        return outcome

    async def claim_flow(self, flow: FlowClaim) -> FlowClaimed:
        """Claim within the type's pause and its cluster-wide start limits."""
        claimed: FlowClaimed = await self._group.submit(claim_flow_step, flow)
        return claimed

    async def set_paused(self, pause: Pause) -> list[str]:
        """Pause or resume a job type for every node."""
        changed: list[str] = await self._group.submit(set_paused_step, pause)
        return changed

    async def fire_schedule(self, fire: ScheduleFire) -> bool:
        """Record a due time, launching its job once across nodes."""
        fired: bool = await self._group.submit(fire_schedule_step, fire)
        return fired


async def _migrate(connection: Connection) -> None:
    """Apply the numbered migrations, one node at a time (a transaction-level advisory lock)."""
    async with connection.transaction():
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS jobd_schema (version integer NOT NULL)"
        )
        version = await connection.fetchval("SELECT max(version) FROM jobd_schema") or 0
        known = migrations("postgres")[-1].version
        if version > known:
            # A newer jobd migrated it (a rolling upgrade half done): this one's queries may
            # no longer fit. As SQLite's `dbfile.check` refuses a newer file.
            raise StorageError(
                f"the database was migrated by a newer jobd (schema {version}, this jobd "
                f"knows up to {known}); upgrade jobd"
            )
        for migration in migrations("postgres"):
            if migration.version > version:
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO jobd_schema (version) VALUES ($1)", migration.version
                )
