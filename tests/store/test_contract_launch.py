"""The store contract, launching and reading: jobs and batches, lists and their filters,
queue places, workflows, records, batch counts and secrets. Runs on real databases only."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import pytest

from provena_jobd.models import JobStatus, JobType
from provena_jobd.queue.store import (
    Claim,
    InvalidPosition,
    JobStore,
    ListScope,
    NewRecord,
    Position,
    Requeue,
)

from .contract_helpers import NOW, StoreFactory, claim_one, finish, new_job

# -- launching and reading ------------------------------------------------------------------


async def test_a_launched_job_is_pending_with_every_field(store: JobStore) -> None:
    job = new_job()
    await store.launch([job])
    stored = await store.get(job.session_id)
    assert stored is not None
    assert stored.status is JobStatus.PENDING
    assert (stored.username, stored.batch_id, stored.job_type) == ("alice", None, JobType.EMAIL)
    assert bytes(stored.payload) == job.payload
    assert stored.info is None and bytes(stored.result) == b"null"
    assert stored.attempt == 0 and stored.started_timestamp is None


async def test_unknown_jobs_and_batches_are_none(store: JobStore) -> None:
    assert await store.get("no-such-job") is None
    assert await store.batch_owner("no-such-batch") is None


async def test_a_new_batch_records_its_owner(store: JobStore) -> None:
    batch_id = str(uuid.uuid4())
    await store.launch([new_job(username="bob", batch_id=batch_id, new_batch=True)])
    assert await store.batch_owner(batch_id) == "bob"


async def test_acknowledged_launches_survive_a_reopen(make_store: StoreFactory) -> None:
    first = make_store()
    await first.open()
    jobs = [new_job() for _ in range(50)]
    for job in jobs:
        await first.launch([job])
    await first.close()
    second = make_store()
    await second.open()
    try:
        for job in jobs:
            assert await second.get(job.session_id) is not None
    finally:
        await second.close()


# -- lists ----------------------------------------------------------------------------------


async def walk(store: JobStore, scope: ListScope, limit: int) -> list[list[str]]:
    pages, after = [], None
    while True:
        page = await store.list_jobs(scope, limit, after)
        pages.append([job.session_id for job in page.jobs])
        if not page.more:
            return pages
        last = page.jobs[-1]
        after = Position(last.session_id, last.created_timestamp)


async def test_walking_a_list_yields_every_job_once_newest_first(store: JobStore) -> None:
    # Several jobs per second, so ties on created_timestamp must be broken by launch order.
    jobs = [new_job(created=int(NOW) + i // 4) for i in range(23)]
    for job in jobs:
        await store.launch([job])
    await store.launch([new_job(username="bob")])
    pages = await walk(store, ListScope(username="alice"), limit=5)
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    assert [s for page in pages for s in page] == [j.session_id for j in reversed(jobs)]


async def test_an_exactly_full_last_page_says_there_is_no_more(store: JobStore) -> None:
    for _ in range(4):
        await store.launch([new_job()])
    pages = await walk(store, ListScope(username="alice"), limit=2)
    assert [len(p) for p in pages] == [2, 2]


async def test_lists_are_scoped_by_batch_user_or_nothing(store: JobStore) -> None:
    batch_id = str(uuid.uuid4())
    batch = [new_job(batch_id=batch_id, new_batch=i == 0) for i in range(3)]
    other = new_job(username="bob")
    await store.launch([*batch, other])
    in_batch = await store.list_jobs(ListScope(batch_id=batch_id), 10, None)
    assert {j.session_id for j in in_batch.jobs} == {j.session_id for j in batch}
    everyone = await store.list_jobs(ListScope(), 10, None)
    assert len(everyone.jobs) == 4
    bobs = await store.list_jobs(ListScope(username="bob"), 10, None)
    assert [j.session_id for j in bobs.jobs] == [other.session_id]
    none = await store.list_jobs(ListScope(batch_id=batch_id, username="bob"), 10, None)
    assert none.jobs == [] and not none.more


async def test_a_position_from_another_list_is_refused(store: JobStore) -> None:
    alices, bobs = new_job(), new_job(username="bob")
    await store.launch([alices, bobs])
    foreign = Position(bobs.session_id, bobs.created_timestamp)
    with pytest.raises(InvalidPosition):
        await store.list_jobs(ListScope(username="alice"), 10, foreign)
    with pytest.raises(InvalidPosition):
        await store.list_jobs(ListScope(), 10, Position("made-up", 1))
    tampered = Position(alices.session_id, alices.created_timestamp + 1)
    with pytest.raises(InvalidPosition):
        await store.list_jobs(ListScope(username="alice"), 10, tampered)


async def test_list_filters_search_and_batches_as_one_entry(store: JobStore) -> None:
    batch = str(uuid.uuid4())
    plain = new_job()
    report = new_job(job_type=JobType.REPORT)
    first = new_job(batch_id=batch, new_batch=True, created=int(NOW) + 1)
    member = new_job(batch_id=batch, created=int(NOW) + 2)
    await store.launch([plain, report, first, member])
    await store.cancel(first.session_id, "Stopped by Carol", NOW)

    async def listed(**filters: Any) -> list[str]:
        page = await store.list_jobs(ListScope(username="alice", **filters), 10, None)
        return [job.session_id for job in page.jobs]

    assert await listed(status=JobStatus.FAILED) == [first.session_id]
    assert await listed(job_type="REPORT") == [report.session_id]
    assert await listed(job_sub_type="SEND_EMAIL", status=JobStatus.PENDING) == [
        member.session_id,
        plain.session_id,
    ]
    assert await listed(search="CAROL") == [first.session_id]  # info, any case
    assert await listed(search=plain.session_id[4:12]) == [plain.session_id]
    n = msgspec.json.decode(report.payload)["n"]
    assert await listed(search=f'"n": {n}') == [report.session_id]  # payload text
    assert await listed(group_batches=True) == [
        member.session_id,
        report.session_id,
        plain.session_id,
    ]
    # Grouped and filtered: the batch stands at its newest job the filters keep.
    assert await listed(group_batches=True, status=JobStatus.FAILED) == [first.session_id]
    grouped = ListScope(username="alice", group_batches=True)
    page = await store.list_jobs(grouped, 1, None)
    rest = await store.list_jobs(grouped, 10, Position(member.session_id, member.created_timestamp))
    assert [job.session_id for job in rest.jobs] == [report.session_id, plain.session_id]
    assert page.more and not rest.more


async def test_queue_place_counts_the_jobs_of_its_type_ahead(store: JobStore) -> None:
    first, second, later = new_job(), new_job(), new_job()
    backing_off = new_job(run_after=NOW + 60)
    other_type = new_job(job_type=JobType.REPORT)
    await store.launch([first, backing_off, other_type, second, later])
    [claimed] = await store.claim(
        Claim(job_type=JobType.EMAIL, limit=1, worker_id="w", now=NOW, lease_expires_at=NOW + 30)
    )
    assert claimed.session_id == first.session_id
    place = await store.queue_place(later.session_id, NOW)
    # The claimed job and `second` come first; the backing-off one and the REPORT do not.
    assert place is not None and (place.status, place.job_type, place.ahead) == (
        JobStatus.PENDING,
        "EMAIL",
        2,
    )
    held = await store.queue_place(backing_off.session_id, NOW)
    assert held is not None and held.run_after == NOW + 60
    assert not held.attempted and not place.attempted  # never claimed
    assert await store.queue_place("no-such-job", NOW) is None


async def test_queue_place_tells_a_job_claimed_before_from_one_never_claimed(
    store: JobStore,
) -> None:
    retried, refunded, delayed = new_job(), new_job(), new_job(run_after=NOW + 60)
    await store.launch([retried, refunded, delayed])
    for job, refund in ((retried, False), (refunded, True)):
        claimed = await claim_one(store)
        assert claimed.session_id == job.session_id
        requeue = Requeue(
            session_id=job.session_id,
            attempt=claimed.attempt,
            info="again later",
            run_after=NOW + 30,
            now=NOW,
            refund=refund,
        )
        assert await store.requeue(requeue) is JobStatus.PENDING
    # A refund gives the attempt back (attempt 0 again), yet the job was claimed: only the
    # delayed launch was never attempted.
    refunded_job = await store.get(refunded.session_id)
    assert refunded_job is not None and refunded_job.attempt == 0
    attempted = {}
    for job in (retried, refunded, delayed):
        place = await store.queue_place(job.session_id, NOW)
        assert place is not None and place.status is JobStatus.PENDING
        attempted[job.session_id] = (place.attempted, place.run_after)
    assert attempted == {
        retried.session_id: (True, NOW + 30),
        refunded.session_id: (True, NOW + 30),
        delayed.session_id: (False, NOW + 60),
    }


async def test_a_workflow_lists_its_root_and_steps_in_launch_order(store: JobStore) -> None:
    root = new_job()
    await store.launch([root])
    held = await claim_one(store)
    children = [new_job(), new_job()]
    children = [msgspec.structs.replace(c, parent_session_id=root.session_id) for c in children]
    assert await store.finish(msgspec.structs.replace(finish(held), launches=children))
    grandchild = await claim_one(store)
    assert grandchild.session_id == children[0].session_id
    leaf = msgspec.structs.replace(new_job(), parent_session_id=children[0].session_id)
    assert await store.finish(msgspec.structs.replace(finish(grandchild), launches=[leaf]))
    expected = [root.session_id, children[0].session_id, children[1].session_id, leaf.session_id]
    for member in expected:
        assert [job.session_id for job in await store.workflow(member, 10)] == expected
    assert len(await store.workflow(root.session_id, 2)) == 2
    assert await store.workflow("no-such-job", 10) == []


async def test_records_are_found_by_id_or_by_text_they_mention(store: JobStore) -> None:
    await store.launch([new_job()])
    held = await claim_one(store)
    records = [
        NewRecord(
            record_id=f"10378.1/{n}",
            kind="registry",
            session_id=held.session_id,
            username="alice",
            data={"dataset": f"ds-{n}", "n": n},
            created=NOW + n,
        )
        for n in range(3)
    ]
    assert await store.finish(msgspec.structs.replace(finish(held), records=records))
    assert await store.records_mentioning("10378.1/1", 10) == [records[1]]
    assert await store.records_mentioning("ds-2", 10) == [records[2]]
    assert await store.records_mentioning("ds-", 2) == records[:2]  # oldest first
    assert await store.records_mentioning("nothing-like-it", 10) == []


async def test_batch_counts_count_each_status(store: JobStore) -> None:
    batch_id = str(uuid.uuid4())
    jobs = [new_job(batch_id=batch_id, new_batch=n == 0) for n in range(4)]
    await store.launch(jobs)
    held = await claim_one(store)
    assert await store.finish(finish(held))
    await claim_one(store)
    assert await store.batch_counts(batch_id) == {
        JobStatus.SUCCEEDED: 1,
        JobStatus.DEQUEUED: 1,
        JobStatus.PENDING: 2,
    }
    assert await store.batch_counts("no-such-batch") == {}


async def test_a_secret_is_made_once_and_survives_a_reopen(make_store: StoreFactory) -> None:
    first = make_store()
    await first.open()
    try:
        secret = await first.secret("signing")
        assert len(secret) >= 32 and await first.secret("signing") == secret
        assert await first.secret("other") != secret
    finally:
        await first.close()
    second = make_store()
    await second.open()
    try:
        assert await second.secret("signing") == secret
    finally:
        await second.close()
