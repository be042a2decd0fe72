"""Run one claimed job: IN_PROGRESS, the handler under a timeout, then a guarded finish."""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from ..clock import Clock
from ..config import PoolSettings, QueueSettings
from ..errors import RetryLater
from ..models import INFO_IN_PROGRESS, INFO_UNHANDLED, JobStatus
from ..queue.backoff import backoff_s
from ..queue.store import ClaimedJob, Finish, JobStore, Lease, Requeue
from .handlers import HandlerRegistry, JobContext

log = logging.getLogger(__name__)

NO_HANDLER = (
    "No handler is configured for job sub type {sub_type} in this jobd, so the job cannot run."
)
TIMED_OUT = "Job timed out: its handler ran longer than {timeout:g} s and was stopped."
BAD_RESULT = "Job failed, err: the handler returned {kind}, not a JSON object."
RETRYING = "Attempt {attempt} failed and will be retried after {delay:g} s: {error}"
RETRIES_EXHAUSTED = "Job failed, err: {error} (gave up after {attempt} attempts)."


class JobRunner:
    """Executes claimed jobs for the pools of one server."""

    def __init__(
        self,
        store: JobStore,
        handlers: HandlerRegistry,
        clock: Clock,
        queue: QueueSettings,
    ) -> None:
        self.store = store
        self.handlers = handlers
        self.clock = clock
        self.queue = queue

    def backoff(self, attempt: int) -> float:
        """Seconds before the next attempt after `attempt` failed ones."""
        return backoff_s(attempt, self.queue.backoff_base_s, self.queue.backoff_max_s)

    async def run(self, job: ClaimedJob, settings: PoolSettings) -> None:
        """Run a job to its end; every write is guarded by the job's attempt."""
        lease = Lease(job.session_id, job.attempt)
        if not await self.store.start(lease, INFO_IN_PROGRESS, self.clock.now()):
            return  # rescued or cancelled meanwhile: this attempt no longer holds the job
        handler = self.handlers.get(job.job_sub_type)
        if handler is None:
            await self._fail(job, NO_HANDLER.format(sub_type=job.job_sub_type.value))
            return
        context = JobContext(
            session_id=job.session_id,
            username=job.username,
            batch_id=job.batch_id,
            job_type=job.job_type,
            job_sub_type=job.job_sub_type,
            attempt=job.attempt,
            clock=self.clock,
        )

        async def call() -> tuple[Any, BaseException | None]:
            # Catch the handler's own exceptions here, so a TimeoutError below can only
            # be the clock's.
            try:
                return await handler(msgspec.json.decode(job.payload), context), None
            except Exception as exc:
                return None, exc

        try:
            result, error = await self.clock.wait_for(call(), settings.timeout_s)
        except TimeoutError:
            await self._fail(job, TIMED_OUT.format(timeout=settings.timeout_s))
            return
        if isinstance(error, RetryLater):
            await self._retry_or_fail(job, str(error) or type(error).__name__)
        elif error is not None:
            log.info("handler failed", extra={"action": "job_failed", "session_id": job.session_id})
            await self._fail(job, INFO_UNHANDLED.format(error=_describe(error)))
        elif not isinstance(result, dict):
            await self._fail(job, BAD_RESULT.format(kind=type(result).__name__))
        else:
            await self._finish(job, JobStatus.SUCCEEDED, None, msgspec.json.encode(result))

    async def _retry_or_fail(self, job: ClaimedJob, error: str) -> None:
        if job.attempt >= job.max_attempts:
            await self._fail(job, RETRIES_EXHAUSTED.format(error=error, attempt=job.attempt))
            return
        delay = self.backoff(job.attempt)
        await self.store.requeue(
            Requeue(
                session_id=job.session_id,
                attempt=job.attempt,
                info=RETRYING.format(attempt=job.attempt, delay=delay, error=error),
                run_after=self.clock.now() + delay,
            )
        )

    async def _fail(self, job: ClaimedJob, info: str) -> None:
        await self._finish(job, JobStatus.FAILED, info, None)

    async def _finish(
        self, job: ClaimedJob, status: JobStatus, info: str | None, result: bytes | None
    ) -> None:
        await self.store.finish(
            Finish(
                session_id=job.session_id,
                attempt=job.attempt,
                status=status,
                info=info,
                result=result,
                now=self.clock.now(),
            )
        )


def _describe(error: BaseException) -> str:
    """The exception as the reference prints it: its message, or its repr if it has none."""
    return str(error) or repr(error)
