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
from .handler_watch import HandlerWatch
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


def _no_op() -> None:
    """The default `release`."""


def _no_hand_off(task: asyncio.Task[None]) -> None:
    """The default `hand_off`: nobody tracks the task that ends an abandoned attempt."""


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
        # Stops the handler of a job that is cancelled (workers/cancellations.py).
        self.cancellations = cancellations
        # Names the handler that blocks the event loop, if one does (started by the server).
        self.watchdog = LoopWatchdog()
        # The watches of the handlers running now, by their job's task.
        self._watches: dict[asyncio.Task[Any], HandlerWatch] = {}
        # Tasks ending the attempts of abandoned handlers, kept referenced until they end.
        self._endings: set[asyncio.Task[None]] = set()
        # Handlers that ignored a stop: kept referenced until they end on their own.
        self._abandoned: set[asyncio.Task[Any]] = set()

    @property
    def abandoned(self) -> int:
        """How many handlers ignored their cancellation and are still running."""
        return len(self._abandoned)

    def stop_task(self, task: asyncio.Task[Any]) -> None:
        """Cancel a job's task for a shutdown: the attempt ends nothing, and the caller puts
        the job back in the queue.

        The shutdown is marked on the handler's watch because a cancel count cannot say
        whose cancel it was: asyncio's TaskGroup on Python 3.11 can leave one behind.
        """
        watch = self._watches.get(task)
        if watch is not None:
            watch.shut_down_now()
        task.cancel()

    def keep_until_done(self, task: asyncio.Task[Any]) -> None:
        """Keep an abandoned handler's task referenced until it ends on its own."""
        self._abandoned.add(task)
        task.add_done_callback(self._abandoned.discard)

    def backoff(self, attempt: int) -> float:
        """Seconds before the next attempt after `attempt` failed ones."""
        return backoff_s(attempt, self.queue.backoff_base_s, self.queue.backoff_max_s)

    async def run(
        self,
        job: ClaimedJob,
        settings: PoolSettings,
        release: Callable[[], None] = _no_op,
        hand_off: Callable[[asyncio.Task[None]], None] = _no_hand_off,
    ) -> None:
        """Run a job to its end in the current task, which is the job's own: its handler runs
        in it (see `handler_watch`). Every write is guarded by the job's attempt.

        `release` is called once the handler is over: on success before the job's end is
        written (so the pool's slot can take its next job meanwhile), on a timeout or a
        cancel after. A handler that ignores being stopped is abandoned: `hand_off(task)`
        names the task that ends the attempt in its place, as this one may never end.
        A shutdown's cancel of the current task (`stop_task`) is raised again once the
        handler has stopped: the caller requeues the job.
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
        task = asyncio.current_task()
        assert task is not None, "a job runs in a task of its own"

        def give_up(watch: HandlerWatch) -> None:
            self._abandon(job, watch, settings, release, hand_off)

        watch = HandlerWatch(self.clock, task, settings.timeout_s, give_up)
        self.watchdog.running(job.session_id, job.job_sub_type)
        self.cancellations.running(job.session_id, watch)
        self._watches[task] = watch
        try:
            # `_call` returns whatever the handler does, a CancelledError included.
            result, error = await _call(handler, context, job.payload)
            watch.returned()
            if not watch.abandoned:  # else its attempt was ended when it was abandoned
                await self._end(job, task, watch, settings, context, release, result, error)
        finally:
            self._watches.pop(task, None)
            if not watch.abandoned:
                self.cancellations.done(job.session_id)
                self.watchdog.done(job.session_id)

    def run_apart(
        self, job: ClaimedJob, settings: PoolSettings
    ) -> tuple[asyncio.Task[None], asyncio.Future[None]]:
        """Run a job in a task of its own, for a caller that keeps no task per job: the task,
        and a future that resolves once the attempt is over (for an abandoned handler, once
        its attempt is ended, without waiting for the handler), with the run's error if any."""
        over: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        handed_off = False

        def settle(ended: asyncio.Task[None]) -> None:
            if over.done():
                return
            if ended.cancelled():
                over.cancel()
            elif ended.exception() is not None:
                over.set_exception(ended.exception())  # type: ignore[arg-type]
            else:
                over.set_result(None)

        def hand_off(ending: asyncio.Task[None]) -> None:
            nonlocal handed_off
            handed_off = True
            ending.add_done_callback(settle)

        task = asyncio.create_task(
            self.run(job, settings, hand_off=hand_off),
            name=f"{HANDLER_TASK_PREFIX}{job.session_id}",
        )
        task.add_done_callback(lambda ended: None if handed_off else settle(ended))
        return task, over

    def _abandon(
        self,
        job: ClaimedJob,
        watch: HandlerWatch,
        settings: PoolSettings,
        release: Callable[[], None],
        hand_off: Callable[[asyncio.Task[None]], None],
    ) -> None:
        """The handler ignored its stop: end its attempt FAILED from another task."""
        log.warning(
            "handler %s of job %s ignored its cancellation; abandoned",
            job.job_sub_type,
            job.session_id,
            extra={"action": "handler_abandoned", "session_id": job.session_id},
        )
        self.keep_until_done(watch.task)
        info = self._stopped_info(job, watch, settings)
        if watch.timed_out:
            info = f"{info} {ABANDONED}"
        self.cancellations.done(job.session_id)
        self.watchdog.done(job.session_id)

        async def end() -> None:
            try:
                await self._fail(job, info)
            except Exception:
                log.exception(
                    "ending an abandoned attempt failed", extra={"action": "runner_failed"}
                )
            finally:
                release()

        ending = asyncio.create_task(end(), name=f"abandoned-{job.session_id}")
        self._endings.add(ending)
        ending.add_done_callback(self._endings.discard)
        hand_off(ending)

    def _stopped_info(self, job: ClaimedJob, watch: HandlerWatch, settings: PoolSettings) -> str:
        """The info of an attempt its watch stopped: timed out, or cancelled (by whom)."""
        if watch.timed_out:
            return TIMED_OUT.format(timeout=settings.timeout_s)
        cancel = self.cancellations.requested(job.session_id) or CANCELLED_LATE
        return CANCELLED_RUNNING.format(info=cancel)

    async def _end(
        self,
        job: ClaimedJob,
        task: asyncio.Task[Any],
        watch: HandlerWatch,
        settings: PoolSettings,
        context: JobContext,
        release: Callable[[], None],
        result: Any,
        error: BaseException | None,
    ) -> None:
        """End the attempt by what the handler returned, or by why it was stopped."""
        if watch.stopped:
            task.uncancel()  # the watch's own cancel, answered here
        if watch.shut_down:  # it wins over a timeout or a cancel
            release()
            raise asyncio.CancelledError  # the shutdown requeues the job
        if watch.stopped:
            try:
                await self._fail(job, self._stopped_info(job, watch, settings))
            finally:
                release()
            return
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
    A CancelledError too: the runner tells whose cancel it was (`JobRunner._end`).
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
