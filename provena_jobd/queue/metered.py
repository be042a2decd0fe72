"""A job store that counts what happens to jobs, for the metrics, and otherwise passes through.

Every component that changes jobs (the API, the pools, the runner, the worker gateway, the
rescuer, retention) goes through the store, so counting here sees every path a job can take,
in-process workers and outside ones alike, without touching the hot code itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..metrics import Metrics
from ..models import Attempt, Job, JobStatus
from .store import (
    CancelOutcome,
    Claim,
    ClaimedJob,
    Finish,
    FlowClaim,
    FlowClaimed,
    JobStore,
    KeyedLaunch,
    LastFire,
    LaunchOutcome,
    Lease,
    ListScope,
    NewJob,
    NewRecord,
    Page,
    Pause,
    Position,
    Prune,
    Pruned,
    QueuePlace,
    Requeue,
    Rescue,
    Rescued,
    ScheduleFire,
)

MAX_TRACKED_LAUNCHES = 100_000


class _Held:
    """What the metrics need to know about a job a worker holds."""

    __slots__ = ("created", "job_type", "started", "sub_type")

    def __init__(self, job: ClaimedJob) -> None:
        self.job_type = job.job_type
        self.sub_type = job.job_sub_type
        self.created = float(job.created_timestamp)
        self.started: float | None = None


class MeteredStore:
    """Wraps a `JobStore`; counts launches, starts, ends, retries, lease losses, rescues."""

    def __init__(self, inner: JobStore, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics
        # Jobs claimed through this store and not yet ended, by session id.
        self._held: dict[str, _Held] = {}
        # When waiting jobs were launched (created_timestamp has whole seconds only); bounded,
        # beyond that (or after a restart) the wait is counted from created_timestamp.
        self._launched: dict[str, float] = {}

    @property
    def on_change(self) -> Callable[[Iterable[str]], None]:
        """The inner store's change listener."""
        return self.inner.on_change

    @on_change.setter
    def on_change(self, listener: Callable[[Iterable[str]], None]) -> None:
        self.inner.on_change = listener

    async def open(self) -> None:
        """Open the inner store."""
        await self.inner.open()

    async def close(self) -> None:
        """Close the inner store."""
        await self.inner.close()

    async def idle(self) -> None:
        """Pass through."""
        await self.inner.idle()

    async def launch(self, jobs: list[NewJob]) -> None:
        """Launch, then count each job."""
        await self.inner.launch(jobs)
        self._count_launched(jobs)

    def _count_launched(self, jobs: list[NewJob]) -> None:
        for job in jobs:
            self.metrics.launched.inc(job.job_type, job.job_sub_type)
            if len(self._launched) < MAX_TRACKED_LAUNCHES:
                self._launched[job.session_id] = job.run_after

    async def get(self, session_id: str) -> Job | None:
        """Pass through."""
        return await self.inner.get(session_id)

    async def batch_owner(self, batch_id: str) -> str | None:
        """Pass through."""
        return await self.inner.batch_owner(batch_id)

    async def list_jobs(self, scope: ListScope, limit: int, after: Position | None) -> Page:
        """Pass through."""
        return await self.inner.list_jobs(scope, limit, after)

    async def claim(self, claim: Claim) -> list[ClaimedJob]:
        """Claim, remembering each job's type and launch time until it ends."""
        jobs = await self.inner.claim(claim)
        self._remember(jobs)
        return jobs

    def _remember(self, jobs: list[ClaimedJob]) -> None:
        for job in jobs:
            held = self._held[job.session_id] = _Held(job)
            held.created = self._launched.pop(job.session_id, held.created)

    async def start(self, lease: Lease, info: str, now: float) -> bool:
        """Start, observing the wait since launch."""
        started = await self.inner.start(lease, info, now)
        if started:
            self._started(lease.session_id, now)
        return started

    def start_at_once(self, job: ClaimedJob, info: str, now: float) -> bool:
        """Start without waiting where the store can, observing the wait since launch."""
        started = self.inner.start_at_once(job, info, now)
        if started:
            self._started(job.session_id, now)
        return started

    def _started(self, session_id: str, now: float) -> None:
        held = self._held.get(session_id)
        if held is not None:
            held.started = now
            self.metrics.wait_seconds.observe(max(0.0, now - held.created), held.job_type)

    async def finish(self, finish: Finish) -> bool:
        """End an attempt: counts the final status and run time, or a lost lease."""
        finished = await self.inner.finish(finish)
        held = self._held.pop(finish.session_id, None)
        if held is None:
            return finished
        if not finished:
            self.metrics.lease_losses.inc(held.job_type)
            return finished
        self.metrics.finished.inc(held.job_type, held.sub_type, finish.status.value)
        if held.started is not None:
            run = max(0.0, finish.now - held.started)
            self.metrics.run_seconds.observe(run, held.job_type)
        if finish.status is JobStatus.SUCCEEDED:
            self._count_launched(finish.launches)
        return finished

    async def requeue(self, requeue: Requeue) -> JobStatus | None:
        """Requeue; a retry (not a shutdown's refund) is counted, and a job ended FAILED
        instead (cancelled while it ran) counts as finished."""
        status = await self.inner.requeue(requeue)
        held = self._held.pop(requeue.session_id, None)
        if held is None:
            return status
        if status is None:
            self.metrics.lease_losses.inc(held.job_type)
        elif status is JobStatus.FAILED:
            self.metrics.finished.inc(held.job_type, held.sub_type, status.value)
            if held.started is not None:
                self.metrics.run_seconds.observe(
                    max(0.0, requeue.now - held.started), held.job_type
                )
        elif not requeue.refund:
            self.metrics.retries.inc(held.job_type)
        return status

    async def extend_leases(self, leases: list[Lease], lease_expires_at: float) -> int:
        """Pass through."""
        return await self.inner.extend_leases(leases, lease_expires_at)

    async def rescue(self, rescue: Rescue) -> list[Rescued]:
        """Rescue, counting jobs requeued and jobs given up (FAILED)."""
        rescued = await self.inner.rescue(rescue)
        for job in rescued:
            self._held.pop(job.session_id, None)
            self.metrics.rescued.inc(job.job_type, job.status.value)
        # Given up: rare, so reading each one for its sub type costs nothing that matters.
        await self._count_failed(r.session_id for r in rescued if r.status is JobStatus.FAILED)
        return rescued

    async def recover(self, now: float, job_types: list[str]) -> list[Rescued]:
        """Recover at startup, counting what was requeued and what was given up."""
        rescued = await self.inner.recover(now, job_types)
        for job in rescued:
            self.metrics.rescued.inc(job.job_type, job.status.value)
        await self._count_failed(r.session_id for r in rescued if r.status is JobStatus.FAILED)
        return rescued

    async def claim_suspect(self, claim: Claim) -> ClaimedJob | None:
        """Claim a crash suspect, remembering it like any claimed job."""
        job = await self.inner.claim_suspect(claim)
        if job is not None:
            self._remember([job])
        return job

    async def clear_suspect(self, session_id: str) -> None:
        """No longer a suspect."""
        await self.inner.clear_suspect(session_id)

    async def count_suspects(self) -> int:
        """Unfinished suspects."""
        return await self.inner.count_suspects()

    async def maintain(self) -> None:
        """The backend's housekeeping."""
        await self.inner.maintain()

    async def _count_failed(self, session_ids: Iterable[str]) -> None:
        """Count jobs that just ended FAILED outside a worker's attempt."""
        for session_id in session_ids:
            job = await self.inner.get(session_id)
            if job is not None:
                self.metrics.finished.inc(job.job_type, job.job_sub_type, "FAILED")

    async def count_waiting(self, job_type: str, now: float, cap: int) -> int:
        """Pass through."""
        return await self.inner.count_waiting(job_type, now, cap)

    async def waiting_by_type(self) -> dict[str, int]:
        """Pass through."""
        return await self.inner.waiting_by_type()

    async def progress(self, lease: Lease, info: str, fraction: float | None) -> bool:
        """Pass through."""
        return await self.inner.progress(lease, info, fraction)

    async def cancel(self, session_id: str, info: str, now: float) -> CancelOutcome:
        """Cancel; a job it ends at once is counted FAILED."""
        outcome = await self.inner.cancel(session_id, info, now)
        if outcome.ended:
            self._held.pop(session_id, None)
            self._launched.pop(session_id, None)
            await self._count_failed([session_id])  # cancels are rare: read its labels
        return outcome

    async def batch_counts(self, batch_id: str) -> dict[JobStatus, int]:
        """Pass through."""
        return await self.inner.batch_counts(batch_id)

    async def workflow(self, session_id: str, limit: int) -> list[Job]:
        """Pass through."""
        return await self.inner.workflow(session_id, limit)

    async def records_mentioning(self, text: str, limit: int) -> list[NewRecord]:
        """Pass through."""
        return await self.inner.records_mentioning(text, limit)

    async def fail_unknown_types(self, known: list[str], info: str, now: float) -> list[str]:
        """Fail them, counting each (startup only)."""
        failed = await self.inner.fail_unknown_types(known, info, now)
        await self._count_failed(failed)
        return failed

    async def prune(self, prune: Prune) -> Pruned:
        """Prune, counting the jobs and records deleted."""
        pruned = await self.inner.prune(prune)
        self.metrics.count_pruned(pruned.jobs, pruned.records)
        return pruned

    async def secret(self, name: str) -> str:
        """Pass through."""
        return await self.inner.secret(name)

    async def launch_once(self, launch: KeyedLaunch) -> LaunchOutcome:
        """Launch once per key, counting the job if it was launched now."""
        outcome = await self.inner.launch_once(launch)
        if outcome.launched:
            self._count_launched([launch.job])
        return outcome

    async def claim_flow(self, flow: FlowClaim) -> FlowClaimed:
        """Claim within limits, remembering each job like `claim`."""
        claimed = await self.inner.claim_flow(flow)
        self._remember(claimed.jobs)
        return claimed

    async def set_paused(self, pause: Pause) -> list[str]:
        """Pass through."""
        return await self.inner.set_paused(pause)

    async def paused_types(self) -> list[str]:
        """Pass through."""
        return await self.inner.paused_types()

    async def fire_schedule(self, fire: ScheduleFire) -> bool:
        """Fire once, counting the launched job."""
        fired = await self.inner.fire_schedule(fire)
        if fired and fire.job is not None:
            self._count_launched([fire.job])
        return fired

    async def last_fires(self) -> dict[str, LastFire]:
        """Pass through."""
        return await self.inner.last_fires()

    async def queue_place(self, session_id: str, now: float) -> QueuePlace | None:
        """Pass through."""
        return await self.inner.queue_place(session_id, now)

    async def attempts(self, session_id: str) -> list[Attempt]:
        """Pass through."""
        return await self.inner.attempts(session_id)
