"""The worker protocol's Python client: claim jobs, heartbeat, report progress, finish.

    async with WorkerClient(url, token, worker_id="mine-1") as worker:
        for work in await worker.claim("REGISTRY", n=1, wait_s=20):
            await worker.start(work)
            await worker.finish(work, "SUCCEEDED", result={})

Every call after `claim` names the job and the attempt it was handed; a `Conflict` (409)
means that attempt no longer holds the job (its lease ran out and another worker has it,
or it was cancelled): stop working on it.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

import msgspec

from .client import JobdClient
from .models import Job, JobResponse
from .worker_protocol import (
    MAX_CLAIM_WAIT_S,
    AttemptRequest,
    ClaimedWork,
    ClaimRequest,
    ClaimResponse,
    FinishRequest,
    LeaseResponse,
    ProgressRequest,
    ReleaseRequest,
    StartRequest,
)

__all__ = ["ClaimResponse", "ClaimedWork", "WorkerClient"]


class WorkerClient(JobdClient):
    """A `JobdClient` that also speaks the worker protocol, as one worker."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        worker_id: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        super().__init__(url, token, timeout_s=timeout_s)
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:12]}"
        self.lease_s = 30.0  # the server's, learnt from each claim

    async def claim(self, job_type: str, *, n: int = 1, wait_s: float = 0.0) -> list[ClaimedWork]:
        """Up to `n` jobs of `job_type` (DEQUEUED, held by this worker); waits up to `wait_s`."""
        request = ClaimRequest(job_type=job_type, worker_id=self.worker_id, n=n, wait_s=wait_s)
        timeout = self.timeout_s + min(wait_s, MAX_CLAIM_WAIT_S)
        body = await self._call("POST", "/jobs/worker/claim", body=request, timeout_s=timeout)
        response = msgspec.json.decode(body, type=ClaimResponse)
        self.lease_s = response.lease_s
        return response.jobs

    async def start(self, work: ClaimedWork, info: str | None = None) -> Job:
        """Mark the job IN_PROGRESS (with the reference's info unless `info` is given)."""
        request = StartRequest(session_id=work.session_id, attempt=work.attempt, info=info)
        return await self._job("/jobs/worker/start", request)

    async def heartbeat(self, work: ClaimedWork) -> LeaseResponse:
        """Keep holding the job for another lease."""
        request = AttemptRequest(session_id=work.session_id, attempt=work.attempt)
        body = await self._call("POST", "/jobs/worker/heartbeat", body=request)
        return msgspec.json.decode(body, type=LeaseResponse)

    async def progress(self, work: ClaimedWork, info: str, fraction: float | None = None) -> Job:
        """Show what the job is doing (`fraction` done, 0 to 1)."""
        request = ProgressRequest(
            session_id=work.session_id, attempt=work.attempt, info=info, fraction=fraction
        )
        return await self._job("/jobs/worker/progress", request)

    async def finish(
        self,
        work: ClaimedWork,
        status: Literal["SUCCEEDED", "FAILED"],
        *,
        info: str | None = None,
        result: dict[str, Any] | None = None,
    ) -> Job:
        """End the attempt; a SUCCEEDED result that does not fit the sub type ends it FAILED."""
        request = FinishRequest(
            session_id=work.session_id,
            attempt=work.attempt,
            status=status,
            info=info,
            result=result,
        )
        return await self._job("/jobs/worker/finish", request)

    async def release(
        self, work: ClaimedWork, *, info: str | None = None, delay_s: float = 0.0
    ) -> Job:
        """Give the job back to the queue; whoever claims it next holds a new attempt."""
        request = ReleaseRequest(
            session_id=work.session_id, attempt=work.attempt, info=info, delay_s=delay_s
        )
        return await self._job("/jobs/worker/release", request)

    async def _job(self, path: str, request: msgspec.Struct) -> Job:
        body = await self._call("POST", path, body=request)
        return msgspec.json.decode(body, type=JobResponse).job
