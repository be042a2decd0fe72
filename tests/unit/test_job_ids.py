"""Session and batch ids: UUID4s as the reference's clients expect, ordered by launch time."""

from __future__ import annotations

import multiprocessing
import uuid

from provena_jobd.job_ids import new_id


def test_an_id_is_a_canonical_version_4_uuid_of_the_rfc_4122_variant() -> None:
    ident = new_id(1_764_590_400.123)
    parsed = uuid.UUID(ident)
    assert parsed.version == 4
    assert parsed.variant == uuid.RFC_4122
    assert ident == str(parsed)  # lower-case, hyphenated, as uuid4() prints


def test_ids_sort_by_launch_time_to_the_millisecond() -> None:
    times = [1_764_590_400.0 + i / 1000 for i in range(0, 5000, 7)]
    ids = [new_id(t) for t in times]
    assert ids == sorted(ids)


def test_ids_of_one_millisecond_differ_in_74_random_bits() -> None:
    ids = {new_id(1_764_590_400.5) for _ in range(100_000)}
    assert len(ids) == 100_000
    # Every random position varies (the time prefix and version/variant bits do not).
    values = [uuid.UUID(i).int for i in list(ids)[:2000]]
    varying = 0
    for bit in range(128):
        seen = {v >> bit & 1 for v in values}
        varying += len(seen) == 2
    assert varying == 74


def _child_ids(queue: multiprocessing.Queue[list[str]]) -> None:
    queue.put([new_id(0.0) for _ in range(50)])


def test_a_forked_child_does_not_reuse_its_parents_randomness() -> None:
    new_id(0.0)  # the parent's buffer is filled
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[list[str]] = context.Queue()
    child = context.Process(target=_child_ids, args=(queue,))
    child.start()
    theirs = queue.get(timeout=30)
    child.join(timeout=30)
    ours = [new_id(0.0) for _ in range(50)]
    assert not set(theirs) & set(ours)
