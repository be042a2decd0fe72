"""The store contract, scheduling and flow control (issue 14): launch keys, pauses, start
limits and schedule fires. Runs on real databases only."""

from __future__ import annotations

import asyncio

from provena_jobd.models import JobStatus, JobType
from provena_jobd.queue.store import (
    ClaimedJob,
    JobStore,
    KeyedLaunch,
    LastFire,
    Lease,
    ListScope,
    Pause,
    Requeue,
    ScheduleFire,
)

from .contract_helpers import LIMITED, NOW, PAUSED, StoreFactory, flow, keyed, new_job


async def test_a_keyed_launch_launches_once_and_returns_the_first_job(store: JobStore) -> None:
    first = await store.launch_once(keyed(new_job()))
    again = await store.launch_once(keyed(new_job(), fingerprint="other"))
    assert first.launched and not again.launched
    assert again.session_id == first.session_id and again.fingerprint == "f1"
    page = await store.list_jobs(ListScope(), 10, None)
    assert [job.session_id for job in page.jobs] == [first.session_id]


async def test_launch_keys_are_per_user_and_forgotten_once_expired(store: JobStore) -> None:
    alice = await store.launch_once(keyed(new_job("alice")))
    bob = await store.launch_once(keyed(new_job("bob")))
    assert alice.launched and bob.launched
    later = await store.launch_once(keyed(new_job("alice"), now=NOW + 60))
    assert later.launched and later.session_id != alice.session_id


async def test_racing_keyed_launches_launch_one_job(store: JobStore) -> None:
    outcomes = await asyncio.gather(*(store.launch_once(keyed(new_job())) for _ in range(20)))
    assert sum(o.launched for o in outcomes) == 1
    assert len({o.session_id for o in outcomes}) == 1


async def test_a_launch_with_info_waits_with_it_and_unkeyed_ones_all_launch(
    store: JobStore,
) -> None:
    job = new_job(run_after=NOW + 600)
    outcome = await store.launch_once(KeyedLaunch(job=job, info="Runs at noon."))
    assert outcome.launched
    stored = await store.get(job.session_id)
    assert stored is not None and stored.info == "Runs at noon."
    assert (await store.claim_flow(flow())).jobs == []  # not claimable before run_after
    assert (await store.claim_flow(flow(now=NOW + 600))).jobs[0].session_id == job.session_id


async def test_a_paused_type_claims_nothing_and_says_so_until_resumed(
    make_store: StoreFactory,
) -> None:
    store = make_store()
    await store.open()
    job = new_job()
    await store.launch([job])
    other = new_job(job_type=JobType.REPORT)
    await store.launch([other])
    changed = await store.set_paused(
        Pause(job_type=JobType.EMAIL, paused=True, info=PAUSED, now=NOW)
    )
    assert changed == [job.session_id]
    await store.close()
    store = make_store()  # the pause survives a restart
    await store.open()
    assert await store.paused_types() == [JobType.EMAIL]
    later = new_job()
    await store.launch([later])
    claimed = await store.claim_flow(flow())
    assert claimed.paused and claimed.jobs == []
    for session_id in (job.session_id, later.session_id):
        waiting = await store.get(session_id)
        assert waiting is not None
        assert (waiting.status, waiting.info) == (JobStatus.PENDING, PAUSED)
    assert len((await store.claim_flow(flow(job_type=JobType.REPORT))).jobs) == 1
    await store.set_paused(Pause(job_type=JobType.EMAIL, paused=False, info=PAUSED, now=NOW))
    assert await store.paused_types() == []
    resumed = await store.get(job.session_id)
    assert resumed is not None and resumed.info is None
    assert len((await store.claim_flow(flow())).jobs) == 2
    await store.close()


async def test_start_limits_hold_claims_to_their_windows(store: JobStore) -> None:
    jobs = [new_job() for _ in range(10)]
    await store.launch(jobs)
    first = await store.claim_flow(flow(now=NOW + 0.1, per_s=2, per_min=5))
    assert len(first.jobs) == 2 and first.limited and first.retry_at == NOW + 1
    held = await store.get(jobs[5].session_id)
    assert held is not None and held.info == LIMITED
    assert len((await store.claim_flow(flow(now=NOW + 0.9, per_s=2, per_min=5))).jobs) == 0
    assert len((await store.claim_flow(flow(now=NOW + 1.0, per_s=2, per_min=5))).jobs) == 2
    last = await store.claim_flow(flow(now=NOW + 2.0, per_s=2, per_min=5))
    assert len(last.jobs) == 1 and last.retry_at == NOW + 60  # the minute is used up
    assert len((await store.claim_flow(flow(now=NOW + 60, per_s=2, per_min=5))).jobs) == 2


async def test_an_unlimited_flow_claim_is_a_plain_claim(store: JobStore) -> None:
    await store.launch([new_job() for _ in range(3)])
    claimed = await store.claim_flow(flow(limit=5))
    assert len(claimed.jobs) == 3 and not claimed.limited and not claimed.paused


async def test_a_schedule_due_time_fires_once(make_store: StoreFactory) -> None:
    store = make_store()
    await store.open()
    job = new_job()
    assert await store.fire_schedule(ScheduleFire(schedule="nightly", due_at=NOW, job=job))
    assert not await store.fire_schedule(
        ScheduleFire(schedule="nightly", due_at=NOW, job=new_job())
    )
    assert await store.fire_schedule(ScheduleFire(schedule="hourly", due_at=NOW, job=None))
    await store.close()
    store = make_store()
    await store.open()
    assert not await store.fire_schedule(
        ScheduleFire(schedule="nightly", due_at=NOW, job=new_job())
    )
    assert await store.fire_schedule(ScheduleFire(schedule="nightly", due_at=NOW + 60, job=None))
    fires = await store.last_fires()
    assert fires == {
        "nightly": LastFire(due_at=NOW + 60, session_id=None),
        "hourly": LastFire(due_at=NOW, session_id=None),
    }
    page = await store.list_jobs(ListScope(), 10, None)
    assert [j.session_id for j in page.jobs] == [job.session_id]
    await store.close()


async def test_a_waiting_jobs_place_says_whether_its_type_is_paused(store: JobStore) -> None:
    job = new_job()
    await store.launch([job])
    place = await store.queue_place(job.session_id, NOW)
    assert place is not None and not place.paused
    await store.set_paused(Pause(job_type=JobType.EMAIL, paused=True, info=PAUSED, now=NOW))
    place = await store.queue_place(job.session_id, NOW)
    assert place is not None and place.paused


def _handed_back(job: ClaimedJob, now: float) -> Requeue:
    """The requeue of a job claimed ahead and never started, as a pool hands it back."""
    return Requeue(
        session_id=job.session_id, attempt=job.attempt, info="back", run_after=now, now=now,
        refund=True,
    )  # fmt: skip


async def test_a_job_handed_back_before_it_started_gives_its_start_back(store: JobStore) -> None:
    await store.launch([new_job() for _ in range(6)])
    first = await store.claim_flow(flow(limit=2, now=NOW + 0.1, per_s=2))
    assert len(first.jobs) == 2
    # Handed back unstarted: its start was never spent, so the window has room for one more.
    assert await store.requeue(_handed_back(first.jobs[1], NOW + 0.2)) is JobStatus.PENDING
    again = await store.claim_flow(flow(now=NOW + 0.3, per_s=2))
    assert [job.session_id for job in again.jobs] == [first.jobs[1].session_id]
    assert again.limited
    # A started job that goes back keeps its start counted: it did start.
    assert await store.start(Lease(first.jobs[0].session_id, 1), "running", NOW + 0.4)
    assert await store.requeue(_handed_back(first.jobs[0], NOW + 0.5)) is JobStatus.PENDING
    assert (await store.claim_flow(flow(now=NOW + 0.6, per_s=2))).jobs == []


async def test_a_hand_back_after_its_window_ended_leaves_the_new_window_alone(
    store: JobStore,
) -> None:
    await store.launch([new_job() for _ in range(6)])
    early = await store.claim_flow(flow(limit=2, now=NOW + 0.1, per_s=2))
    later = await store.claim_flow(flow(limit=2, now=NOW + 1.1, per_s=2))
    assert len(early.jobs) == 2 and len(later.jobs) == 2
    assert await store.requeue(_handed_back(early.jobs[0], NOW + 1.2)) is JobStatus.PENDING
    # The start it gives back was counted in the second that ended, not in this one.
    assert (await store.claim_flow(flow(now=NOW + 1.3, per_s=2))).jobs == []


async def test_claims_in_the_last_half_millisecond_of_a_second_keep_its_limit(
    store: JobStore,
) -> None:
    await store.launch([new_job() for _ in range(6)])
    claimed = [
        len((await store.claim_flow(flow(limit=1, now=NOW + at, per_s=2))).jobs)
        for at in (0.2, 0.9996, 0.9997, 0.9998)
    ]
    # A claim is checked and counted at the millisecond its jobs are claimed at (NOW + 1
    # for the last three): never more than two in one counted second.
    assert claimed == [1, 1, 1, 0]


async def test_a_hand_back_gives_its_start_back_to_the_minute_too(store: JobStore) -> None:
    await store.launch([new_job() for _ in range(6)])
    first = await store.claim_flow(flow(limit=2, now=NOW + 0.1, per_min=2))
    assert len(first.jobs) == 2
    await store.requeue(_handed_back(first.jobs[0], NOW + 10))
    again = await store.claim_flow(flow(now=NOW + 20, per_min=2))
    assert [job.session_id for job in again.jobs] == [first.jobs[0].session_id]


async def test_a_job_handed_back_twice_at_once_gives_one_start_back(store: JobStore) -> None:
    await store.launch([new_job() for _ in range(6)])
    first = await store.claim_flow(flow(limit=2, now=NOW + 0.1, per_s=2))
    twice = _handed_back(first.jobs[0], NOW + 0.2)
    outcomes = await asyncio.gather(store.requeue(twice), store.requeue(twice))
    assert outcomes.count(JobStatus.PENDING) == 1 and outcomes.count(None) == 1
    assert len((await store.claim_flow(flow(now=NOW + 0.3, per_s=2))).jobs) == 1
