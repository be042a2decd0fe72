"""The metered store counts every way a job can end, not only a worker's own finish."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from provena_jobd.metrics import Metrics, ScrapeState, sample
from provena_jobd.models import JobStatus
from provena_jobd.queue.metered import MeteredStore
from provena_jobd.queue.sqlite import SqliteStore
from provena_jobd.queue.store import Claim, Lease, NewJob, Requeue, Rescue

NOW = 1_800_000_000.0


def wake_up(max_attempts: int = 3) -> NewJob:
    return NewJob(
        session_id=str(uuid.uuid4()),
        created_timestamp=int(NOW),
        username="alice",
        batch_id=None,
        new_batch=False,
        job_type="EMAIL",
        job_sub_type="EMAIL_WAKE_UP",
        payload=b"{}",
        max_attempts=max_attempts,
        run_after=NOW,
    )


@pytest.fixture
async def metered(tmp_path: Path) -> AsyncIterator[MeteredStore]:
    store = MeteredStore(SqliteStore(tmp_path / "jobd.db"), Metrics())
    await store.open()
    yield store
    await store.close()


def finished(store: MeteredStore, status: str) -> float:
    text = store.metrics.exposition(ScrapeState())
    labels = {"job_type": "EMAIL", "sub_type": "EMAIL_WAKE_UP", "status": status}
    return sample(text, "jobd_jobs_finished_total", labels)


async def test_a_job_given_up_by_the_rescuer_counts_as_failed(metered: MeteredStore) -> None:
    await metered.launch([wake_up(max_attempts=1)])
    claim = Claim(job_type="EMAIL", limit=1, worker_id="w", now=NOW, lease_expires_at=NOW + 1)
    assert len(await metered.claim(claim)) == 1
    rescued = await metered.rescue(Rescue(now=NOW + 2, horizon=NOW + 2))
    assert [job.status for job in rescued] == ["FAILED"]
    assert finished(metered, "FAILED") == 1
    text = metered.metrics.exposition(ScrapeState())
    assert sample(text, "jobd_jobs_rescued_total", {"job_type": "EMAIL", "status": "FAILED"}) == 1


async def test_a_cancelled_waiting_job_counts_as_failed(metered: MeteredStore) -> None:
    job = wake_up()
    await metered.launch([job])
    outcome = await metered.cancel(job.session_id, "Cancelled by alice.", NOW)
    assert outcome.ended
    assert finished(metered, "FAILED") == 1


async def test_jobs_of_a_removed_type_count_as_failed(metered: MeteredStore) -> None:
    await metered.launch([wake_up(), wake_up()])
    failed = await metered.fail_unknown_types(["REGISTRY"], "gone: {job_type}", NOW)
    assert len(failed) == 2 and finished(metered, "FAILED") == 2


async def test_a_retry_that_ends_a_cancelled_job_counts_as_failed_not_as_a_retry(
    metered: MeteredStore,
) -> None:
    await metered.launch([job := wake_up()])
    claim = Claim(job_type="EMAIL", limit=1, worker_id="w", now=NOW, lease_expires_at=NOW + 30)
    [held] = await metered.claim(claim)
    assert await metered.start(Lease(held.session_id, held.attempt), "running", NOW)
    await metered.cancel(job.session_id, "Cancelled by alice.", NOW + 1)
    retry = Requeue(
        session_id=job.session_id, attempt=1, info="retrying", run_after=NOW + 9, now=NOW + 2
    )
    assert await metered.requeue(retry) is JobStatus.FAILED
    assert finished(metered, "FAILED") == 1
    text = metered.metrics.exposition(ScrapeState())
    assert sample(text, "jobd_job_retries_total", {"job_type": "EMAIL"}) == 0
