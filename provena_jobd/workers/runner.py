"""Run one claimed job: IN_PROGRESS, the handler under a timeout, then a guarded finish."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from ..clock import Clock
from ..config import PoolSettings, QueueSettings
from ..errors import JobFailed, PayloadInvalid, RetryLater
from ..models import INFO_IN_PROGRESS, INFO_UNHANDLED, JobStatus
from ..payloads import RESULT_MODELS, check
from ..queue.backoff import backoff_s
from ..queue.messages import CANCELLED_RUNNING
from ..queue.store import ClaimedJob, Finish, JobStore, Lease, Requeue
from .handlers import Handler, HandlerRegistry, JobContext, Launcher
from .watchdog import HANDLER_TASK_PREFIX, LoopWatchdog

if TYPE_CHECKING:
    from .cancellations import Cancellations

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
CANCELLED_LATE = "Cancelled."
NOT_JSON = "Job failed, err: the handler's result cannot be sent as JSON: {error}."
ABANDONED = "It ignored the stop and was abandoned."
# How long (clock time) a stopped handler gets to end before the runner abandons it.
CANCEL_GRACE_S = 5.0


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
        cancellations: Cancellations,
    ) -> None:
        self.store = store
        self.handlers = handlers
        self.clock = clock
        self.queue = queue
        self.launcher = launcher
        self.public_url = ""  # set once the HTTP server knows its URL (report links)
        # Wakes a runner whose job is cancelled (workers/cancellations.py).
        self.cancellations = cancellations
        # Names the handler that blocks the event loop, if one does (started by the server).
        self.watchdog = LoopWatchdog()
        # Handlers that ignored a stop: kept referenced until they end on their own.
        self._abandoned: set[asyncio.Task[Any]] = set()

    @property
    def abandoned(self) -> int:
        """How many handlers ignored their cancellation and are still running."""
        return len(self._abandoned)

    async def _stop_handler(self, job: ClaimedJob, task: asyncio.Task[Any]) -> bool:
        """Cancel a handler and give it CANCEL_GRACE_S to end; False if it was abandoned."""
        task.cancel()
        try:
            await self.clock.wait_for(asyncio.shield(task), CANCEL_GRACE_S)
            return True
        except TimeoutError:
            log.warning(
                "handler %s of job %s ignored its cancellation; abandoned",
                job.job_sub_type,
                job.session_id,
                extra={"action": "handler_abandoned", "session_id": job.session_id},
            )
            self._abandoned.add(task)
            task.add_done_callback(self._abandoned.discard)
            return False

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
        now = self.clock.now()
        # Without a wait where the store can vouch for the start (one process, nothing but
        # this claimant's own writes since the claim); else a round trip to the database.
        if not self.store.start_at_once(job, INFO_IN_PROGRESS, now):
            lease = Lease(job.session_id, job.attempt)
            if not await self.store.start(lease, INFO_IN_PROGRESS, now):
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

        # The handler runs in its own task, so that a handler which swallows cancellation
        # can be abandoned: the runner stops awaiting it and ends the attempt regardless.
        task = asyncio.create_task(
            _call(handler, context, job.payload), name=f"{HANDLER_TASK_PREFIX}{job.session_id}"
        )
        self.watchdog.running(job.session_id, job.job_sub_type)
        # What the runner awaits; a cancel cancels this, never the handler or this task.
        awaited = asyncio.shield(task)
        self.cancellations.running(job.session_id, awaited)
        try:
            await self._run_handler(job, task, awaited, context, settings, release)
        finally:
            self.cancellations.done(job.session_id)
            self.watchdog.done(job.session_id)

    async def _run_handler(
        self,
        job: ClaimedJob,
        task: asyncio.Task[tuple[Any, BaseException | None]],
        awaited: asyncio.Future[tuple[Any, BaseException | None]],
        context: JobContext,
        settings: PoolSettings,
        release: Callable[[], None],
    ) -> None:
        """Await the handler under its timeout and a possible cancel, then end the attempt."""
        try:
            result, error = await self.clock.wait_for(awaited, settings.timeout_s)
        except TimeoutError:
            abandoned = not await self._stop_handler(job, task)
            timed_out = TIMED_OUT.format(timeout=settings.timeout_s)
            await self._fail(job, f"{timed_out} {ABANDONED}" if abandoned else timed_out)
            return
        except asyncio.CancelledError:
            info = self.cancellations.requested(job.session_id)
            runner = asyncio.current_task()
            if info is None or runner is None or runner.cancelling():
                await self._stop_handler(job, task)
                raise  # a shutdown: the pool requeues the job
            await self._stop_handler(job, task)
            await self._fail(job, CANCELLED_RUNNING.format(info=info))
            return
        finally:
            release()
        cancelled = self.cancellations.requested(job.session_id)
        if cancelled is not None:
            # Cancelled as it returned: whatever it returned, the cancel was answered first.
            await self._fail(job, CANCELLED_RUNNING.format(info=cancelled))
            return
        if isinstance(error, RetryLater):
            await self._retry_or_fail(job, str(error) or type(error).__name__)
        elif isinstance(error, JobFailed):
            await self._fail(job, FAILED.format(error=str(error).rstrip(".")))
        elif error is not None:
            # One line, the job's info says the rest (the reference logs no traceback).
            log.log(
                logging.INFO if isinstance(error, Exception) else logging.WARNING,
                "handler %s of job %s raised %r",
                job.job_sub_type,
                job.session_id,
                error,
                extra={"action": "job_failed", "session_id": job.session_id},
            )
            await self._fail(job, INFO_UNHANDLED.format(error=_describe(error)))
        elif not isinstance(result, dict):
            await self._fail(job, BAD_RESULT.format(kind=type(result).__name__))
        else:
            try:
                check(RESULT_MODELS, job.job_sub_type, result)
            except PayloadInvalid as exc:
                await self._fail(job, BAD_RESULT_SHAPE.format(sub_type=job.job_sub_type, error=exc))
                return
            try:
                encoded = msgspec.json.encode(result)
            except (TypeError, ValueError, OverflowError) as exc:
                await self._fail(job, NOT_JSON.format(error=exc))
                return
            succeeded = await self.store.finish(
                Finish(
                    session_id=job.session_id,
                    attempt=job.attempt,
                    status=JobStatus.SUCCEEDED,
                    info=context.info,
                    result=encoded,
                    now=self.clock.now(),
                    launches=context.launches,
                    records=context.records,
                )
            )
            if not succeeded:
                # Either the attempt lost its lease (then this is a no-op too), or a cancel
                # was committed first: the store never lets a cancelled job succeed.
                cancel = self.cancellations.requested(job.session_id) or CANCELLED_LATE
                await self._fail(job, CANCELLED_RUNNING.format(info=cancel))

    async def _retry_or_fail(self, job: ClaimedJob, error: str) -> None:
        if job.attempt >= job.max_attempts:
            await self._fail(job, RETRIES_EXHAUSTED.format(error=error, attempt=job.attempt))
            return
        delay = self.backoff(job.attempt)
        now = self.clock.now()
        # A cancel recorded after the runner last asked (one that came as the handler
        # returned, or through another node) makes the store end the job FAILED instead of
        # requeueing it: a cancelled job never runs again.
        await self.store.requeue(
            Requeue(
                session_id=job.session_id,
                attempt=job.attempt,
                info=RETRYING.format(attempt=job.attempt, delay=delay, error=error),
                run_after=now + delay,
                now=now,
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


async def _call(
    handler: Handler, context: JobContext, payload: bytes
) -> tuple[Any, BaseException | None]:
    """Run a handler, returning (result, None) or (None, what it raised).

    Everything is caught, BaseException included: a handler's SystemExit, KeyboardInterrupt
    or library-specific BaseException is its own failure, and must not escape into the event
    loop, where asyncio re-raises SystemExit and KeyboardInterrupt out of the loop itself.
    """
    try:
        return await handler(context, msgspec.json.decode(payload)), None
    except BaseException as exc:
        return None, exc


def _describe(error: BaseException) -> str:
    """The exception as the reference prints it: its message, or its repr if it has none.

    A BaseException that is not an Exception (SystemExit, KeyboardInterrupt, a library's
    own) is shown by its repr, so that `SystemExit(3)` does not read as a bare "3".
    """
    if not isinstance(error, Exception):
        return repr(error)
    return str(error) or repr(error)
