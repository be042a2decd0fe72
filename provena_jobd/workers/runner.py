"""Run one claimed job: IN_PROGRESS, the handler under a timeout, then a guarded finish."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import msgspec

from ..clock import Clock
from ..config import PoolSettings, QueueSettings
from ..errors import JobFailed, RetryLater
from ..models import INFO_IN_PROGRESS, INFO_UNHANDLED, JobStatus
from ..payloads import RESULT_MODELS, PayloadInvalid, check
from ..queue.backoff import backoff_s
from ..queue.store import ClaimedJob, Finish, JobStore, Lease, Requeue
from .handlers import HandlerRegistry, JobContext, Launcher

log = logging.getLogger(__name__)

NO_HANDLER = (
    "No handler is configured for job sub type {sub_type} in this jobd, so the job cannot run."
)
TIMED_OUT = "Job timed out: its handler ran longer than {timeout:g} s and was stopped."
FAILED = "Job failed, err: {error}."
BAD_RESULT = "Job failed, err: the handler returned {kind}, not a JSON object."
RETRYING = "Attempt {attempt} failed and will be retried after {delay:g} s: {error}"
RETRIES_EXHAUSTED = "Job failed, err: {error} (gave up after {attempt} attempts)."
BAD_RESULT_SHAPE = "Job failed, err: the handler's result does not fit {sub_type}: {error}."
CANCELLED_RUNNING = "{info} It was running; anything it had launched was discarded."


def _no_op() -> None:
    """The default `release`."""


class JobRunner:
    """Executes claimed jobs for the pools of one server."""

    def __init__(
        self,
        store: JobStore,
        handlers: HandlerRegistry,
        clock: Clock,
        queue: QueueSettings,
        launcher: Launcher,
    ) -> None:
        self.store = store
        self.handlers = handlers
        self.clock = clock
        self.queue = queue
        self.launcher = launcher
        self.public_url = ""  # set once the HTTP server knows its URL (report links)
        # Jobs whose cancellation was requested while running: session id -> info.
        self.cancelling: dict[str, str] = {}

    def backoff(self, attempt: int) -> float:
        """Seconds before the next attempt after `attempt` failed ones."""
        return backoff_s(attempt, self.queue.backoff_base_s, self.queue.backoff_max_s)

    async def run(
        self, job: ClaimedJob, settings: PoolSettings, release: Callable[[], None] = _no_op
    ) -> None:
        """Run a job to its end; every write is guarded by the job's attempt.

        `release` is called once the handler is over: on success before the job's end is
        written (so the pool's slot can take its next job meanwhile), on a timeout or a
        cancel after.
        """
        lease = Lease(job.session_id, job.attempt)
        if not await self.store.start(lease, INFO_IN_PROGRESS, self.clock.now()):
            return  # rescued or cancelled meanwhile: this attempt no longer holds the job
        handler = self.handlers.get(job.job_sub_type)
        if handler is None:
            await self._fail(job, NO_HANDLER.format(sub_type=job.job_sub_type))
            return
        context = JobContext(
            session_id=job.session_id,
            username=job.username,
            batch_id=job.batch_id,
            job_type=job.job_type,
            job_sub_type=job.job_sub_type,
            attempt=job.attempt,
            clock=self.clock,
            launcher=self.launcher,
            progress_sink=self.store,
            public_url=self.public_url,
        )

        async def call() -> tuple[Any, BaseException | None]:
            # Catch the handler's own exceptions here, so a TimeoutError below can only
            # be the clock's.
            try:
                return await handler(context, msgspec.json.decode(job.payload)), None
            except Exception as exc:
                return None, exc

        try:
            result, error = await self.clock.wait_for(call(), settings.timeout_s)
        except TimeoutError:
            await self._fail(job, TIMED_OUT.format(timeout=settings.timeout_s))
            return
        except asyncio.CancelledError:
            info = self.cancelling.pop(job.session_id, None)
            task = asyncio.current_task()
            if info is None or task is None:
                raise  # a shutdown: the pool requeues the job
            task.uncancel()
            await self._fail(job, CANCELLED_RUNNING.format(info=info))
            return
        finally:
            self.cancelling.pop(job.session_id, None)
            release()
        if isinstance(error, RetryLater):
            await self._retry_or_fail(job, str(error) or type(error).__name__)
        elif isinstance(error, JobFailed):
            await self._fail(job, FAILED.format(error=str(error).rstrip(".")))
        elif error is not None:
            log.info("handler failed", extra={"action": "job_failed", "session_id": job.session_id})
            await self._fail(job, INFO_UNHANDLED.format(error=_describe(error)))
        elif not isinstance(result, dict):
            await self._fail(job, BAD_RESULT.format(kind=type(result).__name__))
        else:
            try:
                check(RESULT_MODELS, job.job_sub_type, result)
            except PayloadInvalid as exc:
                await self._fail(job, BAD_RESULT_SHAPE.format(sub_type=job.job_sub_type, error=exc))
                return
            await self.store.finish(
                Finish(
                    session_id=job.session_id,
                    attempt=job.attempt,
                    status=JobStatus.SUCCEEDED,
                    info=context.info,
                    result=msgspec.json.encode(result),
                    now=self.clock.now(),
                    launches=context.launches,
                    records=context.records,
                )
            )

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
        """End the attempt FAILED; whatever the handler launched or recorded is dropped."""
        await self.store.finish(
            Finish(
                session_id=job.session_id,
                attempt=job.attempt,
                status=JobStatus.FAILED,
                info=info,
                result=None,
                now=self.clock.now(),
            )
        )


def _describe(error: BaseException) -> str:
    """The exception as the reference prints it: its message, or its repr if it has none."""
    return str(error) or repr(error)
