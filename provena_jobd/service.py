"""The Job API's operations, independent of HTTP: launch, fetch and list, with their rules."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import msgspec

from .clock import Clock
from .config import Settings
from .errors import BadRequest, NotFound, RequestInvalid
from .models import (
    JOB_TYPE_OF_SUB_TYPE,
    Job,
    JobType,
    LaunchJobRequest,
    LaunchJobResponse,
    ListJobsResponse,
    PaginationKey,
)
from .queue.pagination import INVALID_KEY, key_for, position_of
from .queue.store import InvalidPosition, JobStore, ListScope, NewJob

NOT_AUTHORISED_RECORD = "Not authorised to view this record."
NOT_AUTHORISED_BATCH = "Batch contains items which you do not own. Not authorised."
BOTH_BATCH_OPTIONS = "Cannot specify both a new batch and an existing batch id."
NOT_AUTHORISED_ON_BEHALF = (
    "You are not authorised to launch jobs for another user: that needs the admin role or a "
    "service account."
)


class NotAuthorised(Exception):
    """The caller may not see this; the message is the reference's `detail`."""


class JobService:
    """What the API can do with jobs, for a caller identified by username."""

    def __init__(
        self,
        store: JobStore,
        settings: Settings,
        clock: Clock,
        notify: Callable[[JobType], None],
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.notify = notify

    async def launch(
        self, request: LaunchJobRequest, caller: str, may_act_for_others: bool = True
    ) -> LaunchJobResponse:
        """Validate and durably enqueue one job; it is fetchable as PENDING on return."""
        if request.request_batch_id and request.add_to_batch is not None:
            raise RequestInvalid(
                [{"loc": ["body", "__root__"], "msg": BOTH_BATCH_OPTIONS, "type": "value_error"}]
            )
        expected_type = JOB_TYPE_OF_SUB_TYPE[request.job_sub_type]
        if expected_type is not request.job_type:
            raise BadRequest(
                f"Job sub type {request.job_sub_type.value} belongs to job type "
                f"{expected_type.value}, not {request.job_type.value}."
            )
        username = request.username if request.username is not None else caller
        if username != caller and not may_act_for_others:
            raise NotAuthorised(NOT_AUTHORISED_ON_BEHALF)
        _check_depth(request.job_payload, self.settings.server.max_payload_depth)
        batch_id = request.add_to_batch
        if request.request_batch_id:
            batch_id = str(uuid.uuid4())
        elif batch_id is not None:
            owner = await self.store.batch_owner(batch_id)
            if owner is None:
                raise BadRequest(f"add_to_batch names no existing batch: {batch_id}.")
            if owner != username:
                raise BadRequest(f"Batch {batch_id} belongs to another user; cannot add to it.")
        now = self.clock.now()
        job = NewJob(
            session_id=str(uuid.uuid4()),
            created_timestamp=int(now),
            username=username,
            batch_id=batch_id,
            new_batch=request.request_batch_id,
            job_type=request.job_type,
            job_sub_type=request.job_sub_type,
            payload=msgspec.json.encode(request.job_payload),
            max_attempts=self.settings.pool_for(request.job_type).max_attempts,
            run_after=now,
        )
        await self.store.launch([job])
        self.notify(job.job_type)
        return LaunchJobResponse(session_id=job.session_id, batch_id=batch_id)

    async def fetch(self, session_id: str, caller: str | None) -> Job:
        """One job; with a caller, only that caller's own (the user route)."""
        job = await self.store.get(session_id)
        if job is None:
            raise NotFound()
        if caller is not None and job.username != caller:
            raise NotAuthorised(NOT_AUTHORISED_RECORD)
        return job

    async def list_jobs(
        self, scope: ListScope, limit: int, key: PaginationKey | None, owner: str | None = None
    ) -> ListJobsResponse:
        """A page of a list; with `owner`, every job on it must be theirs (user batch lists)."""
        if owner is not None and scope.batch_id is not None:
            batch_owner = await self.store.batch_owner(scope.batch_id)
            if batch_owner is not None and batch_owner != owner:
                raise NotAuthorised(NOT_AUTHORISED_BATCH)
        try:
            page = await self.store.list_jobs(scope, limit, position_of(scope, key))
        except InvalidPosition:
            raise BadRequest(INVALID_KEY) from None
        if owner is not None and any(job.username != owner for job in page.jobs):
            raise NotAuthorised(NOT_AUTHORISED_BATCH)
        next_key = key_for(scope, page.jobs[-1]) if page.more and page.jobs else None
        return ListJobsResponse(jobs=page.jobs, pagination_key=next_key)


def _check_depth(payload: object, limit: int) -> None:
    """Refuse payloads nested deeper than `limit` before they reach the queue."""
    level: list[object] = [payload]
    for _ in range(limit):
        children: list[object] = []
        for value in level:
            if isinstance(value, dict):
                children.extend(value.values())
            elif isinstance(value, list):
                children.extend(value)
        if not children:
            return
        level = children
    raise RequestInvalid(
        [
            {
                "loc": ["body", "job_payload"],
                "msg": f"payload is nested deeper than {limit} levels",
                "type": "value_error.depth",
            }
        ]
    )
