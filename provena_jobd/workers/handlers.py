"""Handlers: the async functions that do a job's work, and the context they get.

A handler is `async def handler(context: JobContext, payload: dict) -> dict`. What it
launches (`context.launch`) and records (`context.record`) is only buffered: it is committed
in the same transaction as the job's success, so a handler that fails, is retried, cancelled
or loses its worker leaves no orphan and no duplicate behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..clock import Clock
from ..models import LaunchJobRequest, LaunchJobResponse
from ..queue.store import Lease, NewJob, NewRecord

Payload = dict[str, Any]
Result = dict[str, Any]


class Launcher(Protocol):
    """Turns a launch request into a job to insert (the service's rules, without committing)."""

    async def prepare(
        self,
        request: LaunchJobRequest,
        caller: str,
        parent_session_id: str | None,
        pending_batches: Mapping[str, str],
    ) -> tuple[NewJob, LaunchJobResponse]:
        """Validate a launch as the API would and build its row; nothing is written."""
        ...


class ProgressSink(Protocol):
    """Where a running job's progress goes."""

    async def progress(self, lease: Lease, info: str, fraction: float | None) -> bool:
        """Record progress on a held IN_PROGRESS job; False if it no longer holds it."""
        ...


@dataclass
class JobContext:
    """What a handler knows about its job and what it may do besides returning a result."""

    session_id: str
    username: str
    batch_id: str | None
    job_type: str
    job_sub_type: str
    attempt: int
    clock: Clock
    launcher: Launcher
    progress_sink: ProgressSink
    public_url: str = ""
    launches: list[NewJob] = field(default_factory=list)
    records: list[NewRecord] = field(default_factory=list)
    info: str | None = None
    _batches: dict[str, str] = field(default_factory=dict)

    async def launch(
        self,
        job_type: str,
        job_sub_type: str,
        payload: Payload,
        *,
        username: str | None = None,
        request_batch_id: bool = False,
        add_to_batch: str | None = None,
    ) -> LaunchJobResponse:
        """Launch a job (as this job's user, by default) when this job succeeds.

        The ids are known at once, so the result can name them; the job itself is inserted
        only in the transaction that records this job's success.
        """
        request = LaunchJobRequest(
            job_type=job_type,
            job_sub_type=job_sub_type,
            job_payload=payload,
            username=username if username is not None else self.username,
            request_batch_id=request_batch_id,
            add_to_batch=add_to_batch,
        )
        # A handler acts for its job's user, like the service account the reference's
        # workers use: it may launch for others, as the reference's workers do.
        job, response = await self.launcher.prepare(
            request, self.username, self.session_id, self._batches
        )
        if job.new_batch and job.batch_id is not None:
            self._batches[job.batch_id] = job.username
        self.launches.append(job)
        return response

    def record(self, kind: str, data: Mapping[str, Any], record_id: str | None = None) -> str:
        """Keep a record in jobd's simulated registry / provenance store; returns its id."""
        minted = record_id or mint_id()
        self.records.append(
            NewRecord(
                record_id=minted,
                kind=kind,
                session_id=self.session_id,
                username=self.username,
                data=dict(data),
                created=self.clock.now(),
            )
        )
        return minted

    async def progress(self, message: str, fraction: float | None = None) -> None:
        """Show progress while running: `info` becomes the message, `progress` the fraction."""
        if fraction is not None and not 0.0 <= fraction <= 1.0:
            raise ValueError("progress fraction must be between 0 and 1")
        await self.progress_sink.progress(Lease(self.session_id, self.attempt), message, fraction)


Handler = Callable[[JobContext, Payload], Awaitable[Result]]


def mint_id() -> str:
    """A handle-like id for a simulated registry or provenance record."""
    return f"10378.1/{uuid.uuid4().hex[:12]}"


async def wake_up(context: JobContext, payload: Payload) -> Result:
    """A `*_WAKE_UP` job: its only effect is a warm worker, so it succeeds with `{}`."""
    return {}


class HandlerRegistry:
    """Which handler runs each sub type."""

    def __init__(self, handlers: Mapping[str, Handler]) -> None:
        # The wake-up sub types are among the built-in handlers (workers/builtin.py).
        self._handlers: dict[str, Handler] = dict(handlers)

    def get(self, sub_type: str) -> Handler | None:
        """The handler for a sub type, or None if it has none."""
        return self._handlers.get(sub_type)
