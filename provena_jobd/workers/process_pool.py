"""Pools of worker processes that jobd starts and stops (`[pool.<TYPE>] command = [...]`).

A process pool reports its workers as an outside pool does (`external_pool.py`), and scales
like the reference's ECS tasks, with the same pure decisions as the in-process pool
(`autoscale.py`): jobs waiting and fewer than `max_workers` processes -> start one. A process
is provisioning from its start until its first claim (its real cold start), busy while it
holds jobs, idle otherwise; it exits by itself after `idle_timeout_s` without work. A process
that dies has its jobs requeued by the rescuer when their lease runs out, and the pool starts
another if jobs wait - after a growing pause if processes keep failing as they start
(`start_backoff.py`).

In auth modes `token` and `jwt` each process gets `JOBD_TOKEN`: a token jobd made for its own
processes when it started (`identity.ProcessWorkerAuth`), unless the pool's `env` sets one.
What the processes write is logged line by line, that token and the configuration's secrets
redacted (`process_output.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
from collections.abc import Mapping, Set
from dataclasses import dataclass

import msgspec

from ..clock import Clock
from ..config import PoolSettings, QueueSettings
from ..pool_models import PoolSnapshot, StartBackoffInfo, WorkerInfo, exit_words
from ..queue.store import JobStore
from ..redaction import redact
from .autoscale import PoolView, workers_to_start
from .external_pool import ExternalPool
from .gateway import WorkerGateway
from .pool_workers import WorkerState
from .process_output import ProcessOutput
from .shutdown import return_to_queue
from .start_backoff import StartBackoff, is_failed_start, proved_healthy
from .worker_logs import process_exited, process_started

log = logging.getLogger(__name__)

# After the grace period, how long a process has between SIGTERM and SIGKILL.
TERMINATE_WAIT_S = 5.0
# After the processes stopped, how long their output may take to end (a child they left
# behind may hold it open).
OUTPUT_WAIT_S = 1.0


@dataclass
class WorkerProcess:
    """A worker process this pool started."""

    worker_id: str
    process: asyncio.subprocess.Process
    started_at: float
    output: ProcessOutput  # its stdout and stderr, logged redacted
    claimed: bool = False  # it has claimed over the worker protocol at least once
    proven: bool = False  # it has claimed and run long enough to clear the start back-off


def start_error(error: OSError, command: list[str], cwd: str | None) -> str:
    """Why a worker process could not be started, naming what was run and where.

    uvloop (which `jobd serve` runs on) raises these errors without the file's name, so a
    missing command and a missing `cwd` read alike: the message says both.
    """
    named = "" if error.filename is None else f": {error.filename!r}"
    program = command[0] if command else ""
    return (
        f"{type(error).__name__}: {error.strerror or error}{named} "
        f"(command {program!r}, cwd {cwd or os.getcwd()!r})"
    )


class ProcessPool(ExternalPool):
    """A job type run by worker processes that jobd starts and stops."""

    def __init__(
        self,
        job_type: str,
        settings: PoolSettings,
        queue: QueueSettings,
        store: JobStore,
        gateway: WorkerGateway,
        clock: Clock,
        secrets: Set[str] = frozenset(),
    ) -> None:
        super().__init__(job_type, settings, queue, store, gateway, clock, secrets)
        self.jobd_url = ""  # set once jobd listens; no process starts before
        # The worker token jobd made for its own processes (auth modes token and jwt): never
        # logged or shown, only handed to the processes as JOBD_TOKEN.
        self.token: str | None = None
        self.outputs: list[ProcessOutput] = []  # those still read (a process may have ended)
        self.processes: list[WorkerProcess] = []
        self.backoff = StartBackoff()
        self._ids = itertools.count(1)
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        """Jobs may be waiting: look again now."""
        self._wakeup.set()

    def start(self) -> None:
        """Start the supervisor loop."""
        self._task = asyncio.create_task(self._supervise(), name=f"process-pool-{self.job_type}")

    def state(self, worker: WorkerProcess) -> WorkerState:
        """Provisioning until its first claim, then busy while it holds jobs."""
        seen = self.gateway.worker(worker.worker_id)
        if seen is None:
            return WorkerState.PROVISIONING
        return WorkerState.BUSY if seen.held else WorkerState.IDLE

    async def _supervise(self) -> None:
        while not self._stopping:
            try:
                await self.tick()
            except Exception:
                log.exception("process pool tick failed", extra={"action": "pool_tick_failed"})
            self._wakeup.clear()
            wait = self.queue.poll_interval_s
            backing_off = self.backoff.retry_at - self.clock.now()
            if 0 < backing_off < wait:
                wait = backing_off  # start the next process as soon as the pause is over
            await self.clock.wait_event(self._wakeup, wait)

    async def tick(self) -> None:
        """Forget processes that ended; start processes for jobs nobody will take."""
        await self._reap()
        if self._stopping or not self.jobd_url:
            return
        now = self.clock.now()
        if not self.backoff.may_start(now):
            return  # the last processes failed to start: wait before trying again
        concurrency = self.settings.concurrency
        states = [self.state(w) for w in self.processes]
        provisioning = states.count(WorkerState.PROVISIONING)
        ready = len(states) - provisioning
        if len(self.processes) >= self.settings.max_workers:
            return
        free = sum(
            concurrency - len(seen.held)
            for w in self.processes
            if (seen := self.gateway.worker(w.worker_id)) is not None
        )
        if self.job_type in await self.store.paused_types():
            return  # a paused type (issue 14): a process would only sit idle
        cap = self.settings.max_workers * concurrency
        waiting = await self.store.count_waiting(self.job_type, self.clock.now(), cap)
        view = PoolView(waiting=waiting, provisioning=provisioning, ready=ready, free_slots=free)
        starts = workers_to_start(view, self.settings.max_workers, concurrency)
        if self.backoff.probing:
            # Until a process proves healthy, one at a time: a crash loop costs one process.
            starts = min(starts, 0 if provisioning else 1)
        for _ in range(starts):
            if not await self._spawn():
                break

    async def _reap(self) -> None:
        """Forget processes that ended; count failed starts and healthy processes."""
        now = self.clock.now()
        ended = [w for w in self.processes if w.process.returncode is not None]
        # What a process wrote is logged before its end is: its pipes may still hold its last
        # lines. Not for long, though: a child it left behind may keep them open.
        await asyncio.gather(*(w.output.ended(OUTPUT_WAIT_S) for w in ended))
        self.outputs = [output for output in self.outputs if not output.done]
        for worker in list(self.processes):
            if self.gateway.worker(worker.worker_id) is not None:
                worker.claimed = True
            code = worker.process.returncode
            if worker not in ended or code is None:
                if not worker.proven and proved_healthy(worker.claimed, now - worker.started_at):
                    # Once per process: a long-lived worker does not excuse later failures.
                    worker.proven = True
                    self.backoff.healthy()
                continue
            self.processes.remove(worker)
            held = self.gateway.forget(worker.worker_id)
            self._ended(worker, code, len(held), now)

    def _ended(self, worker: WorkerProcess, code: int, held: int, now: float) -> None:
        """Log a process that ended on its own; a failed start pauses the next one."""
        pid, lived = worker.process.pid, now - worker.started_at
        # Its jobs stay held until their lease runs out; the rescuer requeues them.
        holding = f" holding {held} job{'s' if held != 1 else ''}" if held else ""
        if self._stopping or not is_failed_start(worker.claimed, code, lived):
            if worker.claimed and not worker.proven:
                self.backoff.healthy()  # it claimed, then stopped well (say, idle)
            level = logging.WARNING if held else logging.INFO
            how = f"{exit_words(code)}{holding}"
            process_exited(log, level, self.job_type, worker.worker_id, pid, how, code)
            return
        when = f"{lived:.1f} s after it started" if worker.claimed else "before its first claim"
        what = f"process {pid} {exit_words(code)} {when}{holding}"
        self._failed_start(now, worker.worker_id, what, code)

    def _failed_start(
        self, now: float, worker_id: str, what: str, code: int | None, error: str | None = None
    ) -> None:
        """Count `worker_id`'s failed start and log it in one line: how it ended and when the
        next starts (named in the fields `job_type` and `worker_id`, as worker_logs' lines)."""
        delay = self.backoff.failed(now, code, error)
        failures = self.backoff.failures
        log.warning(
            "%s worker %s (%d failed start%s in a row); next start in %g s",
            self.job_type,
            what,
            failures,
            "" if failures == 1 else "s",
            delay,
            extra={
                "action": "worker_start_failed",
                "job_type": self.job_type,
                "worker_id": worker_id,
                "exit_code": code,
                "retry_in_s": delay,
            },
        )

    async def _spawn(self) -> bool:
        """Start one worker process; False if it could not be started (a failed start)."""
        worker_id = f"{self.job_type}-p{next(self._ids)}"
        environment = {
            **os.environ,
            # jobd's own token for its processes; a JOBD_TOKEN in the pool's env wins.
            **({"JOBD_TOKEN": self.token} if self.token else {}),
            **self.settings.env,
            "JOBD_URL": self.jobd_url,
            "JOBD_WORKER_ID": worker_id,
            "JOB_TYPE": self.job_type,
            "IDLE_TIMEOUT": f"{self.settings.idle_timeout_s:g}",
            # The reference's workers launch follow-up jobs through the Job API: jobd.
            "JOB_API_ENDPOINT": self.jobd_url,
        }
        # The token is made once the pools exist (as jobd starts): known by now.
        secrets = {*self.secrets, self.token} if self.token else self.secrets
        try:
            output = await ProcessOutput.open(worker_id, secrets)
            try:
                process = await asyncio.create_subprocess_exec(
                    *self.settings.command,
                    cwd=self.settings.cwd,
                    env=environment,
                    stdin=asyncio.subprocess.DEVNULL,
                    # Logged line by line, redacted (never on jobd's stdout: it has its URL).
                    stdout=output.stdout,
                    stderr=output.stderr,
                    start_new_session=True,  # a Ctrl-C in jobd's terminal is jobd's to handle
                )
            finally:
                output.started()  # the process holds the write ends now (or never will)
        except OSError as error:  # no such command or cwd, not executable, out of files...
            # Shown in GET /admin/pool and the log: redacted.
            reason = redact(start_error(error, self.settings.command, self.settings.cwd), secrets)
            what = f"process could not be started: {reason}"
            self._failed_start(self.clock.now(), worker_id, what, None, reason)
            return False
        self.outputs.append(output)
        self.processes.append(WorkerProcess(worker_id, process, self.clock.now(), output))
        self.cold_starts += 1
        process_started(log, self.job_type, worker_id, process.pid)
        return True

    async def drain(self, grace_s: float) -> None:
        """Stop starting processes, give their jobs `grace_s`, then stop them; requeue the rest."""
        self._stopping = True
        self.notify()
        if self._task is not None:
            await self._task
        # Counted by their finishes: a process that dies holding a job drops its leases too.
        finished_before = self.jobs_finished

        async def jobs_done() -> None:
            while not self._hurry.is_set():
                await self._reap()  # a process that died holding a job is not worth waiting for
                if all(self.state(w) is not WorkerState.BUSY for w in self.processes):
                    return
                self.gateway.released.clear()
                await self.clock.wait_event(self.gateway.released, self.queue.poll_interval_s)

        with contextlib.suppress(TimeoutError):
            await self.clock.wait_for(jobs_done(), grace_s)
        await asyncio.gather(*(self._stop(w) for w in self.processes))
        # What they wrote as they stopped is logged before jobd goes on (and stops reading).
        await asyncio.gather(*(output.finish(OUTPUT_WAIT_S) for output in self.outputs))
        self.outputs.clear()
        for worker in self.processes:  # after their last lines, as a process ending on its own
            code = worker.process.returncode
            if code is not None:
                how = f"stopped at jobd's shutdown: {exit_words(code)}"
                process_exited(
                    log,
                    logging.INFO,
                    self.job_type,
                    worker.worker_id,
                    worker.process.pid,
                    how,
                    code,
                )
        now = self.clock.now()
        leases = [lease for w in self.processes for lease in self.gateway.forget(w.worker_id)]
        returned = await return_to_queue(self.store, leases, now)
        self.shutdown.add(finished=self.jobs_finished - finished_before, returned=returned)
        self.processes.clear()

    async def _stop(self, worker: WorkerProcess) -> None:
        process = worker.process
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), TERMINATE_WAIT_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()

    async def snapshot(self, waiting_by_type: Mapping[str, int] | None = None) -> PoolSnapshot:
        """As an outside pool's, and the back-off while its processes fail to start."""
        snapshot = await super().snapshot(waiting_by_type)
        return msgspec.structs.replace(snapshot, start_backoff=self.start_backoff())

    def start_backoff(self) -> StartBackoffInfo | None:
        """The back-off while its processes fail to start; None while they start well."""
        return self.backoff.info()

    def _workers(self) -> list[WorkerInfo]:
        return [
            WorkerInfo(
                worker_id=w.worker_id,
                state=self.state(w).value,
                pid=w.process.pid,
                jobs=len(seen.held) if (seen := self.gateway.worker(w.worker_id)) else 0,
            )
            for w in self.processes
            if w.process.returncode is None
        ]
