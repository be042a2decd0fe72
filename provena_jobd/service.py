"""The Job API's operations, independent of HTTP, with their rules."""

from __future__ import annotations

import difflib
from collections.abc import Awaitable, Callable, Mapping

import msgspec

from .clock import Clock
from .coercion import Problem, problem
from .config import Settings
from .errors import BadRequest, NotAuthorised, NotFound, PayloadInvalid, RequestInvalid
from .job_ids import new_id
from .launch_options import (
    NO_SUCH_BATCH,
    check_replay,
    delayed_info,
    fingerprint,
    idempotency_key,
    run_after,
)
from .models import (
    MAX_SEARCH,
    TERMINAL_STATUSES,
    BatchSummary,
    Job,
    JobStatus,
    LaunchJobRequest,
    LaunchJobResponse,
    ListFilters,
    ListJobsResponse,
    PaginationKey,
    ReplayedLaunch,
    WorkflowResponse,
)
from .pagination import INVALID_KEY, key_for, position_of
from .payloads import PAYLOAD_MODELS, check
from .queue.store import InvalidPosition, JobStore, KeyedLaunch, LaunchKey, ListScope, NewJob

NOT_AUTHORISED_RECORD = "Not authorised to view this record."
NOT_AUTHORISED_BATCH = "Batch contains items which you do not own. Not authorised."
BOTH_BATCH_OPTIONS = "Cannot specify both a new batch and an existing batch id."
NOT_AUTHORISED_ON_BEHALF = (
    "You are not authorised to launch jobs for another user: this jobd restricts that "
    "(auth.restrict_on_behalf) to the admin role and its service accounts."
)
INVALID_PAYLOAD = (
    "Invalid payload supplied: Failed to parse the payload as specified job type. Err: {error}."
)
WORKFLOW_LIMIT = 1000


def _enum_problem(field: str, value: str, permitted: tuple[str, ...]) -> Problem:
    """The reference's 422 entry for an unknown enum value; a likely typo gets a suggestion
    instead of the whole list (`ctx.enum_values` always has every permitted value)."""
    close = difflib.get_close_matches(value.upper(), permitted, n=1, cutoff=0.6)
    if close:
        message = f"value is not a valid enumeration member; did you mean '{close[0]}'?"
    else:
        listed = ", ".join(f"'{v}'" for v in permitted)
        message = f"value is not a valid enumeration member; permitted: {listed}"
    return problem(["body", field], message, "type_error.enum", enum_values=list(permitted))


class JobService:
    """What the API can do with jobs, for a caller identified by username."""

    def __init__(
        self,
        store: JobStore,
        settings: Settings,
        clock: Clock,
        notify: Callable[[str], None],
        interrupt: Callable[[Job, str], Awaitable[Job]],
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.notify = notify
        # Stops a running job whose cancel is recorded (workers/cancellations.py).
        self.interrupt = interrupt
        self.catalog = settings.catalog()

    # -- launching --------------------------------------------------------------------------

    async def prepare(
        self,
        request: LaunchJobRequest,
        caller: str,
        parent_session_id: str | None = None,
        pending_batches: Mapping[str, str] | None = None,
        may_act_for_others: bool = True,
        retry_of: str | None = None,
    ) -> tuple[NewJob, LaunchJobResponse]:
        """Apply every launch rule and build the job's row; nothing is written."""
        problems = self.type_problems(request.job_type, request.job_sub_type)
        if problems:
            raise RequestInvalid(problems)
        # As the reference's root validator (skip_on_failure): only once the fields are valid.
        if request.request_batch_id and request.add_to_batch is not None:
            raise RequestInvalid(
                [{"loc": ["body", "__root__"], "msg": BOTH_BATCH_OPTIONS, "type": "value_error"}]
            )
        expected_type = self.catalog.job_type_of(request.job_sub_type)
        if expected_type != request.job_type:
            raise BadRequest(
                f"Job sub type {request.job_sub_type} belongs to job type "
                f"{expected_type}, not {request.job_type}."
            )
        username = request.username if request.username is not None else caller
        if username != caller and not may_act_for_others:
            raise NotAuthorised(NOT_AUTHORISED_ON_BEHALF)
        _check_depth(request.job_payload, self.settings.server.max_payload_depth)
        try:
            check(PAYLOAD_MODELS, request.job_sub_type, request.job_payload)
        except PayloadInvalid as exc:
            raise BadRequest(INVALID_PAYLOAD.format(error=exc)) from None
        now = self.clock.now()
        batch_id = request.add_to_batch
        if request.request_batch_id:
            batch_id = new_id(now)
        elif batch_id is not None:
            owner = (pending_batches or {}).get(batch_id) or await self.store.batch_owner(batch_id)
            if owner is None:
                raise BadRequest(NO_SUCH_BATCH.format(batch_id=batch_id))
            if owner != username:
                raise BadRequest(f"Batch {batch_id} belongs to another user; cannot add to it.")
        job = NewJob(
            session_id=new_id(now),
            created_timestamp=int(now),
            username=username,
            batch_id=batch_id,
            new_batch=request.request_batch_id,
            job_type=request.job_type,
            job_sub_type=request.job_sub_type,
            payload=msgspec.json.encode(request.job_payload),
            max_attempts=self.settings.pool_for(request.job_type).max_attempts,
            run_after=run_after(request, now, self.settings.queue.max_delay_s),
            parent_session_id=parent_session_id,
            retry_of=retry_of,
        )
        return job, LaunchJobResponse(session_id=job.session_id, batch_id=batch_id)

    def type_problems(self, job_type: object, job_sub_type: object) -> list[Problem]:
        """The 422 entries for a job type and a sub type this jobd does not accept, both at
        once; a value that is not text is left to the decoder, which reports it."""
        catalog = self.catalog
        problems = []
        if isinstance(job_type, str) and job_type not in catalog.job_types:
            problems.append(_enum_problem("job_type", job_type, catalog.job_types))
        if isinstance(job_sub_type, str) and catalog.job_type_of(job_sub_type) is None:
            problems.append(_enum_problem("job_sub_type", job_sub_type, catalog.sub_types))
        return problems

    async def launch(
        self,
        request: LaunchJobRequest,
        caller: str,
        may_act_for_others: bool = True,
        key_header: str | None = None,
    ) -> LaunchJobResponse:
        """Validate and durably enqueue one job; it is fetchable as PENDING on return.

        With an idempotency key (`key_header` or the body's), a repeat of the same request
        returns the job the first one launched, and launches nothing.
        """
        key = idempotency_key(request, key_header)
        job, response = await self.prepare(request, caller, may_act_for_others=may_act_for_others)
        now = self.clock.now()
        info = delayed_info(now, job.run_after)
        if key is None and info is None:
            await self.store.launch([job])  # the common case, as before
            self.notify(job.job_type)
            return response
        digest = fingerprint(request, job.username)
        launch_key = None
        if key is not None:
            expires = now + self.settings.queue.idempotency_ttl_s
            launch_key = LaunchKey(
                username=job.username, key=key, fingerprint=digest, now=now, expires_at=expires
            )
        outcome = await self.store.launch_once(KeyedLaunch(job=job, info=info, key=launch_key))
        if not outcome.launched:
            assert key is not None
            check_replay(key, digest, outcome.fingerprint, outcome.session_id)
            return ReplayedLaunch(session_id=outcome.session_id, batch_id=outcome.batch_id)
        self.notify(job.job_type)
        return response

    async def retry(self, session_id: str, caller: str | None) -> LaunchJobResponse:
        """Relaunch a FAILED job as a new job with the same payload, recording what it retries."""
        job = await self.fetch(session_id, caller)
        if job.status is not JobStatus.FAILED:
            raise BadRequest(
                f"Only a FAILED job can be retried; job {session_id} is {job.status.value}."
            )
        request = LaunchJobRequest(
            job_type=job.job_type,
            job_sub_type=job.job_sub_type,
            job_payload=msgspec.json.decode(job.payload),
            username=job.username,
        )
        new, response = await self.prepare(request, job.username, retry_of=job.session_id)
        await self.store.launch([new])
        self.notify(new.job_type)
        return response

    async def cancel(self, session_id: str, caller: str | None, by: str) -> tuple[Job, bool]:
        """Cancel a job: a waiting one ends FAILED now; a running one is interrupted.

        The store records the cancel first (the source of truth); then whoever runs the job
        is interrupted (workers/cancellations.py has the whole flow). Returns the job and
        whether it was running.
        """
        job = await self.fetch(session_id, caller)
        if job.status in TERMINAL_STATUSES:
            raise BadRequest(
                f"Job {session_id} has already finished ({job.status.value}); "
                "it cannot be cancelled."
            )
        info = f"Cancelled by {by}."
        outcome = await self.store.cancel(session_id, info, self.clock.now())
        running = not outcome.ended and outcome.status is JobStatus.IN_PROGRESS
        job = await self.fetch(session_id, None)
        if running:
            job = await self.interrupt(job, info)
        return job, running

    # -- reading ----------------------------------------------------------------------------

    async def fetch(self, session_id: str, caller: str | None) -> Job:
        """One job; with a caller, only that caller's own (the user route)."""
        job = await self.store.get(session_id)
        if job is None:
            raise NotFound()
        if caller is not None and job.username != caller:
            raise NotAuthorised(NOT_AUTHORISED_RECORD)
        return job

    async def list_jobs(
        self,
        limit: int,
        key: PaginationKey | None,
        *,
        username: str | None = None,
        batch_id: str | None = None,
        owner: str | None = None,
        filters: ListFilters | None = None,
    ) -> ListJobsResponse:
        """A page of jobs, newest first: everyone's, or narrowed to a user and/or a batch,
        and by the optional `filters`; with `owner`, every job on it must be theirs (user
        batch lists)."""
        narrow = filters or ListFilters()
        self._check_filters(narrow)
        scope = ListScope(
            username=username,
            batch_id=batch_id,
            status=narrow.status,
            job_type=narrow.job_type,
            job_sub_type=narrow.job_sub_type,
            search=narrow.search or None,
            group_batches=narrow.group_batches,
        )
        if owner is not None and scope.batch_id is not None:
            await self._check_batch_owner(scope.batch_id, owner)
        try:
            page = await self.store.list_jobs(scope, limit, position_of(scope, key))
        except InvalidPosition:
            raise BadRequest(INVALID_KEY) from None
        if owner is not None and any(job.username != owner for job in page.jobs):
            raise NotAuthorised(NOT_AUTHORISED_BATCH)
        next_key = key_for(scope, page.jobs[-1]) if page.more and page.jobs else None
        batches = None
        if scope.group_batches:
            batches = {}
            for batch in dict.fromkeys(job.batch_id for job in page.jobs if job.batch_id):
                counts = await self.store.batch_counts(batch)
                batches[batch] = {status.value: counts.get(status, 0) for status in JobStatus}
        return ListJobsResponse(jobs=page.jobs, pagination_key=next_key, batches=batches)

    def _check_filters(self, filters: ListFilters) -> None:
        """A type or sub type filter must name one this jobd accepts (a typo is a 422, not
        an empty list); every problem is named in one 422."""
        problems = self.type_problems(filters.job_type, filters.job_sub_type)
        if filters.search is not None and len(filters.search) > MAX_SEARCH:
            message = f"ensure this value has at most {MAX_SEARCH} characters"
            kind = "value_error.any_str.max_length"
            problems.append(problem(["body", "search"], message, kind, limit_value=MAX_SEARCH))
        if problems:
            raise RequestInvalid(problems)

    async def batch_summary(self, batch_id: str, owner: str | None) -> BatchSummary:
        """Counts by status for a batch of any size, and whether all of it has finished."""
        if owner is not None:
            await self._check_batch_owner(batch_id, owner)
        counts = await self.store.batch_counts(batch_id)
        total = sum(counts.values())
        if total == 0 and await self.store.batch_owner(batch_id) is None:
            raise NotFound()  # else a caller waiting for `done` would wait forever
        finished = sum(counts.get(status, 0) for status in TERMINAL_STATUSES)
        return BatchSummary(
            batch_id=batch_id,
            total=total,
            counts={status.value: counts.get(status, 0) for status in JobStatus},
            done=total > 0 and finished == total,
            all_succeeded=total > 0 and counts.get(JobStatus.SUCCEEDED, 0) == total,
        )

    async def workflow(self, session_id: str, caller: str | None) -> WorkflowResponse:
        """The chain a job belongs to, steps in launch order with their statuses."""
        await self.fetch(session_id, caller)
        steps = await self.store.workflow(session_id, WORKFLOW_LIMIT)
        if caller is not None:
            steps = [step for step in steps if step.username == caller]
        root = steps[0].session_id if steps else session_id
        done = all(step.status in TERMINAL_STATUSES for step in steps)
        return WorkflowResponse(session_id=root, steps=steps, done=done)

    async def _check_batch_owner(self, batch_id: str, owner: str) -> None:
        batch_owner = await self.store.batch_owner(batch_id)
        if batch_owner is not None and batch_owner != owner:
            raise NotAuthorised(NOT_AUTHORISED_BATCH)


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
