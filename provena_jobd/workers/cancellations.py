"""Cancelling a job: the one place that knows who holds a running job and interrupts it.

The flow, from `POST /jobs/{user,admin}/cancel` to the job's end:

1. `JobService.cancel` applies the rules (the caller may see the job; it has not finished)
   and records the cancel in the store, which is the source of truth: a waiting job (PENDING,
   DEQUEUED) ends FAILED there and then; a running one (IN_PROGRESS) gets its
   `cancel_requested_by` set, and from then on the store refuses to let it end SUCCEEDED
   (trigger `cancelled_never_succeeds`, migration 0004_fault_guards.sql).
2. For a running job the service then calls `Cancellations.interrupt`, which finds who holds
   it: a worker outside jobd (its job type has an `ExternalPool`), whose attempt is ended
   FAILED now through the `WorkerGateway` (the worker learns at its next call); or a handler
   this process runs, which is woken here.
3. The `JobRunner` registers each handler it runs (`running`, with the `HandlerWatch` that
   watches it) and forgets it when the attempt is over (`done`), so a request is only ever
   kept for a job that is running here and never outlives its attempt. The watch cancels
   the job's task (the handler runs in it), gives the handler `CANCEL_GRACE_S` to stop,
   and the runner ends the attempt FAILED with the words `requested` gives it.

A cancel that reaches the runner too late to interrupt anything (the handler has returned
and the runner is writing its end) still wins: the runner finds the request, or, if it never
saw one, the store refuses the success and the runner ends the attempt FAILED instead.

A shutdown cancels the same task, but through `JobRunner.stop_task`, which marks the watch:
so a cancel is never mistaken for a shutdown. A second cancel, or one that arrives while a
timed out handler is being stopped, interrupts nothing twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..models import Job

if TYPE_CHECKING:  # the gateway imports the runner, which imports this module
    from .gateway import WorkerGateway
    from .handler_watch import HandlerWatch


class Cancellations:
    """Interrupts running jobs on request: outside workers' via the gateway, handlers here."""

    def __init__(self, gateway: WorkerGateway) -> None:
        self.gateway = gateway
        # Handlers running here: session id -> the watch that can stop it.
        self._watches: dict[str, HandlerWatch] = {}
        # Cancels requested for handlers running here: session id -> the job's info.
        self._requests: dict[str, str] = {}

    @property
    def pending(self) -> int:
        """How many handlers running here have a cancel their runner has not taken yet."""
        return len(self._requests)

    async def interrupt(self, job: Job, info: str) -> Job:
        """Stop a running job whose cancel the store has recorded; returns the job as it is."""
        if self.gateway.external(job.job_type):  # run by workers outside jobd
            return await self.gateway.cancel_running(job, info)
        watch = self._watches.get(job.session_id)
        if watch is not None and job.session_id not in self._requests:
            self._requests[job.session_id] = info
            watch.cancel()  # a no-op once the handler has returned: the runner still asks
        return job

    # -- the runner's side -------------------------------------------------------------------

    def running(self, session_id: str, watch: HandlerWatch) -> None:
        """The handler of `session_id` now runs here, watched by `watch`."""
        self._watches[session_id] = watch

    def requested(self, session_id: str) -> str | None:
        """Take the cancel requested for a running job: the info to end it with, or None."""
        return self._requests.pop(session_id, None)

    def done(self, session_id: str) -> None:
        """The job's attempt is over: forget it, and any cancel nobody took."""
        self._watches.pop(session_id, None)
        self._requests.pop(session_id, None)
