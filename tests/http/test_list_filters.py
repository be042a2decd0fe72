"""Server-side list filters, text search, batches as one entry, and the catalog route."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.http.api_helpers import call, client, detail, launch, server

__all__ = ["client", "server"]  # the fixtures


def ids(page: dict[str, Any]) -> list[str]:
    return [job["session_id"] for job in page["jobs"]]


async def walk(client: TestClient[Any, Any], path: str, body: dict[str, Any]) -> list[str]:
    """Every session id a list gives, page by page (limit 2, so keys are exercised)."""
    seen: list[str] = []
    key = None
    while True:
        page = await call(
            client, "POST", path, 200, json={**body, "limit": 2, "pagination_key": key}
        )
        seen += ids(page)
        key = page["pagination_key"]
        if key is None:
            return seen


async def test_filters_and_search_cover_every_page_not_just_the_first(
    client: TestClient[Any, Any],
) -> None:
    needle = await launch(client, job_payload={"note": "Needle-In-Payload"})
    doomed = await launch(client)
    await call(client, "POST", f"/jobs/admin/cancel?session_id={doomed['session_id']}", 200)
    report = await launch(client, job_type="REGISTRY", job_sub_type="REGISTRY_WAKE_UP")
    for _ in range(6):  # newer jobs push the first three off a first page of 2
        await launch(client)
    path = "/jobs/user/list"
    assert await walk(client, path, {"search": "needle-in"}) == [needle["session_id"]]
    # Ids begin with their launch time (job_ids.py), so the random tail is what tells them apart.
    tail = doomed["session_id"][-12:]
    assert await walk(client, path, {"search": tail.upper()}) == [doomed["session_id"]]
    assert await walk(client, path, {"search": "cancelled"}) == [doomed["session_id"]]
    assert await walk(client, path, {"status": "FAILED"}) == [doomed["session_id"]]
    assert await walk(client, path, {"job_type": "REGISTRY"}) == [report["session_id"]]
    assert await walk(client, path, {"job_sub_type": "REGISTRY_WAKE_UP"}) == [report["session_id"]]
    pending = await walk(client, "/jobs/admin/list", {"status": "PENDING", "search": "local"})
    assert len(pending) == 8 and doomed["session_id"] not in pending
    assert await walk(client, path, {"search": "no such text"}) == []


async def test_a_filtered_key_is_valid_only_with_the_same_filters(
    client: TestClient[Any, Any],
) -> None:
    for _ in range(3):
        await launch(client)
    page = await call(
        client, "POST", "/jobs/user/list", 200, json={"limit": 1, "status": "PENDING"}
    )
    key = page["pagination_key"]
    assert key["filters"] == {"status": "PENDING"}
    for body in ({}, {"status": "FAILED"}, {"status": "PENDING", "search": "x"}):
        answer = await call(
            client, "POST", "/jobs/user/list", 400, json={**body, "pagination_key": key}
        )
        assert detail(answer).startswith("Invalid pagination_key")
    unfiltered = await call(client, "POST", "/jobs/user/list", 200, json={"limit": 1})
    assert "filters" not in unfiltered["pagination_key"]  # the reference's shape is kept
    assert "batches" not in unfiltered


async def test_unknown_types_and_bad_filters_are_refused(client: TestClient[Any, Any]) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"job_type": "EMIAL"}, "job_type"),
        ({"job_sub_type": "SEND_EMIAL"}, "job_sub_type"),
        ({"status": "DONE"}, "status"),
        ({"search": "x" * 201}, "search"),
        ({"group_batches": "maybe"}, "group_batches"),
    ]
    for body, field in cases:
        problems = detail(await call(client, "POST", "/jobs/user/list", 422, json=body))
        assert problems[0]["loc"] == ["body", field], body


async def test_one_422_names_every_bad_filter(client: TestClient[Any, Any]) -> None:
    body = {"job_type": "EMIAL", "job_sub_type": "SEND_EMIAL", "search": "x" * 201}
    problems = detail(await call(client, "POST", "/jobs/user/list", 422, json=body))
    assert [p["loc"] for p in problems] == [
        ["body", "job_type"],
        ["body", "job_sub_type"],
        ["body", "search"],
    ]


async def test_a_batch_is_one_entry_with_its_whole_counts(client: TestClient[Any, Any]) -> None:
    standalone = [(await launch(client))["session_id"] for _ in range(7)]
    first = await launch(client, request_batch_id=True)
    batch_id = first["batch_id"]
    for _ in range(39):
        await launch(client, add_to_batch=batch_id)
    last = await launch(client)
    member = await launch(client, add_to_batch=batch_id)  # the batch's newest job
    await call(client, "POST", f"/jobs/admin/cancel?session_id={member['session_id']}", 200)
    page = await call(client, "POST", "/jobs/user/list", 200, json={"group_batches": True})
    assert ids(page) == [member["session_id"], last["session_id"], *reversed(standalone)][:10]
    assert page["batches"] == {
        batch_id: {"PENDING": 40, "DEQUEUED": 0, "IN_PROGRESS": 0, "SUCCEEDED": 0, "FAILED": 1}
    }
    everything = await walk(client, "/jobs/user/list", {"group_batches": True})
    assert len(everything) == 9
    # Filtered, the batch is listed at its newest matching member; counts stay whole.
    pending = await call(
        client, "POST", "/jobs/user/list", 200, json={"group_batches": True, "status": "PENDING"}
    )
    assert ids(pending)[0] == last["session_id"]
    assert pending["jobs"][1]["batch_id"] == batch_id
    assert pending["batches"][batch_id]["PENDING"] == 40


async def test_the_catalog_lists_every_accepted_sub_type(client: TestClient[Any, Any]) -> None:
    body = await call(client, "GET", "/jobs/catalog", 200)
    assert body["job_types"] == ["PROV_LODGE", "REGISTRY", "EMAIL", "REPORT"]
    assert body["sub_types"]["GENERATE_REPORT"] == "REPORT"
    assert len(body["sub_types"]) == 14
