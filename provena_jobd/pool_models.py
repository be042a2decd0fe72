"""Wire models of `GET /admin/pool`: what the pools report, without the pools.

They live apart from `workers/` so that a client reading the report does not import the
pools, the runner and the store.
"""

from __future__ import annotations

import msgspec

from .clock import rounded_to_ms
from .config import PoolSettings
from .launch_options import utc_time


class WorkerInfo(msgspec.Struct, kw_only=True):
    """One worker: in jobd, or outside it (a process it started, or one that claims over
    HTTP); `since` is when it entered its state, `ready_at` when a provisioning one is ready
    (epoch seconds; null where unknown)."""

    worker_id: str
    state: str
    pid: int | None = None
    jobs: int = 0
    since: float | None = None
    ready_at: float | None = None
    node: str | None = None  # the jobd node hosting it, with several nodes on PostgreSQL

    def __post_init__(self) -> None:
        """Its times to the millisecond (the pools compute them from their clock)."""
        if self.since is not None:
            self.since = rounded_to_ms(self.since)
        if self.ready_at is not None:
            self.ready_at = rounded_to_ms(self.ready_at)


class StartBackoffInfo(msgspec.Struct, kw_only=True):
    """A process pool whose last worker processes failed to start (a crash loop): `failures`
    in a row, how the last one ended, and when the pool starts the next (epoch seconds).

    `exit_code` is the last process's exit status (negative: killed by that signal), or null
    when the command could not be run at all; `error` then says why. `message` says it all in
    one sentence, as the Pools page and `jobd pool` show it.
    """

    failures: int
    exit_code: int | None = None
    error: str | None = None
    retry_at: float
    message: str = ""  # phrased from the fields above as it is built (any value is replaced)

    def __post_init__(self) -> None:
        """`retry_at` to the millisecond (the pool computes it from its clock), and the
        sentence (the same for a client that decodes it)."""
        self.retry_at = rounded_to_ms(self.retry_at)
        self.message = f"{failed_starts(self)}; {next_start(self.retry_at)}."


def exit_words(exit_code: int) -> str:
    """How a process ended, in words: `exited with code 3` or `was killed by signal 9`."""
    if exit_code < 0:  # asyncio's returncode for a signal
        return f"was killed by signal {-exit_code}"
    return f"exited with code {exit_code}"


def failed_starts(backoff: StartBackoffInfo) -> str:
    """Why a process pool has no worker, in words: `2 worker process starts failed in a row
    (the last exited with code 3)`. The one phrasing of it: `start_backoff.message` and a
    waiting job's `start_failing` message both begin with it."""
    if backoff.exit_code is None:
        ended = f"could not be started: {backoff.error}"
    else:
        ended = exit_words(backoff.exit_code)
    starts = "start" if backoff.failures == 1 else "starts"
    return f"{backoff.failures} worker process {starts} failed in a row (the last {ended})"


def next_start(retry_at: float) -> str:
    """When a pool pausing after failed starts starts the next: `next start at <UTC time>`."""
    return f"next start at {utc_time(retry_at)} UTC"


class PoolSnapshot(msgspec.Struct, kw_only=True):
    """A pool's state for `GET /admin/pool`."""

    job_type: str
    workers: dict[str, int]
    running_jobs: int
    waiting: int
    cold_starts: int
    jobs_finished: int
    settings: PoolSettings
    processes: list[WorkerInfo] = []  # workers outside jobd, with their pids
    worker_list: list[WorkerInfo] = []  # every worker, in jobd or outside it
    # A process pool backing off after failed starts; null while its processes start well.
    start_backoff: StartBackoffInfo | None = None


class PoolsResponse(msgspec.Struct):
    """Body of `GET /admin/pool`."""

    pools: list[PoolSnapshot]
