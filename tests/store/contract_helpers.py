"""Shared helpers of the store contract suite: a clock reading, job builders, claims and
finishes, and flow-control requests. The fixtures live in conftest.py."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable

from provena_jobd.models import JobStatus, JobSubType, JobType
from provena_jobd.queue.store import (
    Claim,
    ClaimedJob,
    Finish,
    FlowClaim,
    JobStore,
    KeyedLaunch,
    LaunchKey,
    NewJob,
    StartLimits,
)

NOW = 1_800_000_000.0
StoreFactory = Callable[[], JobStore]


_counter = itertools.count()


def new_job(
    username: str = "alice",
    job_type: JobType = JobType.EMAIL,
    batch_id: str | None = None,
    new_batch: bool = False,
    created: int = int(NOW),
    max_attempts: int = 3,
    run_after: float = NOW,
) -> NewJob:
    """A job to launch: an EMAIL for alice, due at NOW, with a payload unique to it."""
    sub_type = {
        JobType.EMAIL: JobSubType.SEND_EMAIL,
        JobType.REGISTRY: JobSubType.REGISTER_CREATE_ACTIVITY,
        JobType.PROV_LODGE: JobSubType.MODEL_RUN_PROV_LODGE,
        JobType.REPORT: JobSubType.GENERATE_REPORT,
    }[job_type]
    return NewJob(
        session_id=str(uuid.uuid4()),
        created_timestamp=created,
        username=username,
        batch_id=batch_id,
        new_batch=new_batch,
        job_type=job_type,
        job_sub_type=sub_type,
        payload=b'{"n": %d}' % next(_counter),
        max_attempts=max_attempts,
        run_after=run_after,
    )


async def claim_one(
    store: JobStore, job_type: JobType = JobType.EMAIL, now: float = NOW
) -> ClaimedJob:
    """Claim exactly one job of `job_type` for worker w1, leased for 30 s."""
    claimed = await store.claim(
        Claim(job_type=job_type, limit=1, worker_id="w1", now=now, lease_expires_at=now + 30)
    )
    assert len(claimed) == 1
    return claimed[0]


def finish(job: ClaimedJob, status: JobStatus = JobStatus.SUCCEEDED, now: float = NOW) -> Finish:
    """The finish of `job`'s attempt: an empty result on success, "boom" otherwise."""
    result = b"{}" if status is JobStatus.SUCCEEDED else None
    info = None if status is JobStatus.SUCCEEDED else "boom"
    return Finish(
        session_id=job.session_id,
        attempt=job.attempt,
        status=status,
        info=info,
        result=result,
        now=now,
    )


# -- scheduling and flow control (issue 14) -------------------------------------------------

PAUSED = "Waiting: paused."
LIMITED = "Waiting: rate limit."


def keyed(job: NewJob, key: str = "k1", fingerprint: str = "f1", now: float = NOW) -> KeyedLaunch:
    """A launch of `job` under a launch key of its user that lasts 60 s."""
    return KeyedLaunch(
        job=job,
        key=LaunchKey(
            username=job.username, key=key, fingerprint=fingerprint, now=now, expires_at=now + 60
        ),
    )


def flow(
    limit: int = 10,
    now: float = NOW,
    per_s: int | None = None,
    per_min: int | None = None,
    job_type: JobType = JobType.EMAIL,
) -> FlowClaim:
    """A flow-controlled claim of `job_type` for worker w1, with the given start limits."""
    return FlowClaim(
        claim=Claim(
            job_type=job_type, limit=limit, worker_id="w1", now=now, lease_expires_at=now + 30
        ),
        limits=StartLimits(per_s=per_s, per_min=per_min),
        paused_info=PAUSED,
        limited_info=LIMITED,
    )
