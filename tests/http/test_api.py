"""The HTTP contract, through aiohttp's test client: shapes, rules and every error."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from provena_jobd.models import JobSubType
from provena_jobd.server import JobdServer
from tests.helpers import REFERENCE_JOB_FIELDS
from tests.http.api_helpers import WAKE, call, detail, launch
from tests.http.api_helpers import client as client
from tests.http.api_helpers import server as server


async def test_health(client: TestClient[Any, Any]) -> None:
    assert await call(client, "GET", "/", 200) == {"message": "Health check successful."}


async def test_a_launched_job_is_fetchable_at_once_with_every_field(
    client: TestClient[Any, Any], server: JobdServer
) -> None:
    launched = await launch(client, job_payload={"reason": "warm up"})
    assert launched["batch_id"] is None
    uuid.UUID(launched["session_id"], version=4)
    for route in ("/jobs/user/fetch", "/jobs/admin/fetch"):
        body = await call(client, "GET", route, 200, params={"session_id": launched["session_id"]})
        job = body["job"]
        assert REFERENCE_JOB_FIELDS <= set(job)
        assert job["status"] == "PENDING" and job["gsi_status"] == "ok"
        assert job["payload"] == {"reason": "warm up"}
        assert job["info"] is None and job["result"] is None and job["batch_id"] is None
        assert job["username"] == "local"
        assert job["created_timestamp"] == int(server.clock.now())
        assert job["attempt"] == 0 and job["started_timestamp"] is None


async def test_fetch_errors(client: TestClient[Any, Any]) -> None:
    for route in ("/jobs/user/fetch", "/jobs/admin/fetch"):
        assert detail(await call(client, "GET", route, 400, params={"session_id": "nope"})) == (
            "Item was not found."
        )
        assert detail(await call(client, "GET", route, 422)) == [
            {"loc": ["query", "session_id"], "msg": "field required", "type": "value_error.missing"}
        ]


async def test_the_user_route_refuses_another_users_job(client: TestClient[Any, Any]) -> None:
    launched = await launch(client, username="someone-else")
    params = {"session_id": launched["session_id"]}
    assert detail(await call(client, "GET", "/jobs/user/fetch", 401, params=params)) == (
        "Not authorised to view this record."
    )
    body = await call(client, "GET", "/jobs/admin/fetch", 200, params=params)
    assert body["job"]["username"] == "someone-else"


async def test_batches_at_launch(client: TestClient[Any, Any]) -> None:
    first = await launch(client, request_batch_id=True)
    batch_id = first["batch_id"]
    uuid.UUID(batch_id, version=4)
    second = await launch(client, add_to_batch=batch_id)
    assert second["batch_id"] == batch_id
    members = await call(client, "POST", "/jobs/user/list_batch", 200, json={"batch_id": batch_id})
    assert [j["session_id"] for j in members["jobs"]] == [
        second["session_id"],
        first["session_id"],
    ]
    assert members["pagination_key"] is None


async def test_launch_refusals_change_nothing(client: TestClient[Any, Any]) -> None:
    theirs = await launch(client, username="bob", request_batch_id=True)
    cases: list[tuple[dict[str, Any], int, Any]] = [
        (
            {**WAKE, "request_batch_id": True, "add_to_batch": "x"},
            422,
            [
                {
                    "loc": ["body", "__root__"],
                    "msg": "Cannot specify both a new batch and an existing batch id.",
                    "type": "value_error",
                }
            ],
        ),
        (
            {**WAKE, "job_sub_type": "REGISTRY_WAKE_UP"},
            400,
            "Job sub type REGISTRY_WAKE_UP belongs to job type REGISTRY, not EMAIL.",
        ),
        ({**WAKE, "add_to_batch": "no-such-batch"}, 400, None),
        ({**WAKE, "add_to_batch": theirs["batch_id"]}, 400, None),
        (
            {**WAKE, "job_type": "FAX"},
            422,
            [
                {
                    "loc": ["body", "job_type"],
                    "msg": "value is not a valid enumeration member; permitted: "
                    "'PROV_LODGE', 'REGISTRY', 'EMAIL', 'REPORT'",
                    "type": "type_error.enum",
                    "ctx": {"enum_values": ["PROV_LODGE", "REGISTRY", "EMAIL", "REPORT"]},
                }
            ],
        ),
        ({**WAKE, "job_sub_type": "FAX_IT"}, 422, None),
        (
            {**WAKE, "job_sub_type": "EMAIL_WAKEUP"},
            422,
            [
                {
                    "loc": ["body", "job_sub_type"],
                    "msg": "value is not a valid enumeration member; did you mean 'EMAIL_WAKE_UP'?",
                    "type": "type_error.enum",
                    "ctx": {"enum_values": [s.value for s in JobSubType]},
                }
            ],
        ),
        (  # every problem, in the reference's (pydantic v1's) words
            {"job_type": "EMAIL", "job_sub_type": "SEND_EMAIL", "job_payload": {"email_to": {}}},
            400,
            "Invalid payload supplied: Failed to parse the payload as specified job type. "
            "Err: 4 validation errors for EmailSendEmailPayload\n"
            "email_to\n  str type expected (type=type_error.str)\n"
            "subject\n  field required (type=value_error.missing)\n"
            "body\n  field required (type=value_error.missing)\n"
            "reason\n  field required (type=value_error.missing).",
        ),
        ({**WAKE, "job_payload": "not an object"}, 422, None),
        ({"job_type": "EMAIL", "job_payload": {}}, 422, None),
        ({**WAKE, "request_batch_id": "maybe"}, 422, None),
    ]
    for body, status, expected in cases:
        answer = detail(await call(client, "POST", "/jobs/admin/launch", status, json=body))
        if expected is not None:
            assert answer == expected
    everyone = await call(client, "POST", "/jobs/admin/list", 200, json={})
    assert [j["session_id"] for j in everyone["jobs"]] == [theirs["session_id"]]


async def test_a_422_lists_every_problem_of_a_launch(client: TestClient[Any, Any]) -> None:
    job_types = ["PROV_LODGE", "REGISTRY", "EMAIL", "REPORT"]
    bad_type = {
        "loc": ["body", "job_type"],
        "msg": "value is not a valid enumeration member; did you mean 'EMAIL'?",
        "type": "type_error.enum",
        "ctx": {"enum_values": job_types},
    }
    bad_sub_type = {
        "loc": ["body", "job_sub_type"],
        "msg": "value is not a valid enumeration member; permitted: "
        + ", ".join(f"'{s.value}'" for s in JobSubType),
        "type": "type_error.enum",
        "ctx": {"enum_values": [s.value for s in JobSubType]},
    }
    both = {"job_type": "MAIL", "job_sub_type": "WAKE"}
    launch = "/jobs/admin/launch"
    assert detail(await call(client, "POST", launch, 422, json={**both, "job_payload": {}})) == [
        bad_type,
        bad_sub_type,
    ]
    # With what the decoder finds (a missing field, a mistyped one), in the fields' order.
    assert detail(
        await call(client, "POST", launch, 422, json={**both, "request_batch_id": "maybe"})
    ) == [
        bad_type,
        bad_sub_type,
        {"loc": ["body", "job_payload"], "msg": "field required", "type": "value_error.missing"},
        {
            "loc": ["body", "request_batch_id"],
            "msg": "value could not be parsed to a boolean",
            "type": "type_error.bool",
        },
    ]
    # The reference checks the batch options only once every field is valid (its root
    # validator skips on failure), so a bad field is reported without them.
    mixed = {**WAKE, "job_type": "MAIL", "request_batch_id": True, "add_to_batch": "x"}
    assert detail(await call(client, "POST", launch, 422, json=mixed)) == [bad_type]
    assert (await call(client, "POST", "/jobs/admin/list", 200, json={}))["jobs"] == []


@pytest.mark.parametrize(
    "raw", [b"", b"{", b"not json", b"[]", b"\xff\xfe", b'{"job_type": "EMAIL",}']
)
async def test_bodies_that_are_not_a_json_object_get_422(
    client: TestClient[Any, Any], raw: bytes
) -> None:
    headers = {"Content-Type": "application/json"}
    answer = await call(client, "POST", "/jobs/admin/launch", 422, data=raw, headers=headers)
    assert detail(answer)[0]["loc"][0] == "body"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (  # a lone high surrogate: the decoder itself calls it "Input data was truncated"
            rb'{"job_type": "EMAIL", "job_payload": {"a": "\ud800"}}',
            "invalid escape \\ud800 (byte 44): a UTF-16 high surrogate must be followed by a "
            "low surrogate escape (\\udc00 to \\udfff)",
        ),
        (
            rb'{"job_type": "EMAIL", "job_payload": {"a": "\\\uDBFFx"}}',
            "invalid escape \\uDBFF (byte 46): a UTF-16 high surrogate must be followed by a "
            "low surrogate escape (\\udc00 to \\udfff)",
        ),
        (
            b'{"job_type": "EMAIL", "job_payload": {"a": "caf\xe9"}}',
            "the body is not valid UTF-8 (byte 47)",
        ),
        # Truly cut short, also just after a high surrogate that may yet be paired.
        (b'{"job_type": "EMAIL", ', "Input data was truncated"),
        (rb'{"job_type": "EMAIL", "job_payload": {"a": "\ud800', "Input data was truncated"),
        (rb'{"job_type": "EMAIL", "job_payload": {"a": "\ud800\u', "Input data was truncated"),
        # An escaped backslash before "ud800" is text, not an escape.
        (rb'{"job_type": "EMAIL", "job_payload": {"a": "\\ud800', "Input data was truncated"),
    ],
)
async def test_a_body_that_is_not_json_says_why(
    client: TestClient[Any, Any], raw: bytes, reason: str
) -> None:
    headers = {"Content-Type": "application/json"}
    answer = await call(client, "POST", "/jobs/admin/launch", 422, data=raw, headers=headers)
    assert detail(answer) == [
        {"loc": ["body"], "msg": f"Invalid JSON: {reason}", "type": "value_error.jsondecode"}
    ]


async def test_deeply_nested_payloads_are_refused(client: TestClient[Any, Any]) -> None:
    too_deep: Any = {}
    for _ in range(40):
        too_deep = {"a": too_deep}
    problems = detail(
        await call(
            client, "POST", "/jobs/admin/launch", 422, json={**WAKE, "job_payload": too_deep}
        )
    )
    assert problems[0]["loc"] == ["body", "job_payload"]
    absurd = b'{"job_type": "EMAIL", "job_payload": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    headers = {"Content-Type": "application/json"}
    await call(client, "POST", "/jobs/admin/launch", 422, data=absurd, headers=headers)
    assert (await call(client, "POST", "/jobs/admin/list", 200, json={}))["jobs"] == []


@pytest.mark.parametrize("kind", ["application/x-www-form-urlencoded", "text/plain"])
async def test_bodies_that_are_not_json_get_415(client: TestClient[Any, Any], kind: str) -> None:
    body = b'{"job_type": "EMAIL", "job_sub_type": "EMAIL_WAKE_UP", "job_payload": {}}'
    answer = await call(
        client, "POST", "/jobs/admin/launch", 415, data=body, headers={"Content-Type": kind}
    )
    assert "application/json" in detail(answer)


async def test_an_oversized_body_gets_413(client: TestClient[Any, Any]) -> None:
    big = {**WAKE, "job_payload": {"blob": "x" * 70_000}}
    assert "too large" in detail(await call(client, "POST", "/jobs/admin/launch", 413, json=big))
    assert (await call(client, "POST", "/jobs/admin/list", 200, json={}))["jobs"] == []


async def test_walking_the_user_list_returns_each_job_once_newest_first(
    client: TestClient[Any, Any],
) -> None:
    ids = [(await launch(client))["session_id"] for _ in range(12)]
    await launch(client, username="bob")
    seen: list[str] = []
    key = None
    pages = 0
    while True:
        page = await call(
            client, "POST", "/jobs/user/list", 200, json={"limit": 5, "pagination_key": key}
        )
        seen += [j["session_id"] for j in page["jobs"]]
        pages += 1
        key = page["pagination_key"]
        if key is None:
            break
        assert set(key) == {"session_id", "username", "created_timestamp"}
    assert seen == list(reversed(ids)) and pages == 3
    default = await call(client, "POST", "/jobs/user/list", 200, json={})
    assert len(default["jobs"]) == 10


async def test_a_list_needs_a_body(client: TestClient[Any, Any]) -> None:
    assert detail(await call(client, "POST", "/jobs/user/list", 422)) == [
        {"loc": ["body"], "msg": "field required", "type": "value_error.missing"}
    ]


@pytest.mark.parametrize("limit", [0, -5, 1001, "ten"])
async def test_limits_outside_1_to_1000_get_422(client: TestClient[Any, Any], limit: Any) -> None:
    problems = detail(await call(client, "POST", "/jobs/user/list", 422, json={"limit": limit}))
    assert problems[0]["loc"] == ["body", "limit"]


async def test_bad_pagination_keys_get_400(client: TestClient[Any, Any]) -> None:
    mine = await launch(client)
    theirs = await launch(client, username="bob")
    await launch(client)
    page = await call(client, "POST", "/jobs/user/list", 200, json={"limit": 1})
    good = page["pagination_key"]
    bad_keys: list[Any] = [
        {"session_id": theirs["session_id"], "username": "local", "created_timestamp": 1},
        {**good, "created_timestamp": good["created_timestamp"] + 1},
        {**good, "username": "bob"},
        {"session_id": mine["session_id"]},
        {**good, "extra": 1},
        {**good, "created_timestamp": "soon"},
        {"session_id": 5, "username": "local", "created_timestamp": 1},
    ]
    for key in bad_keys:
        body = {"limit": 1, "pagination_key": key}
        answer = detail(await call(client, "POST", "/jobs/user/list", 400, json=body))
        assert answer.startswith("Invalid pagination_key")
    assert detail(
        await call(client, "POST", "/jobs/user/list", 422, json={"pagination_key": "abc"})
    )[0]["loc"] == ["body", "pagination_key"]


async def test_admin_lists_everyone_or_one_user(client: TestClient[Any, Any]) -> None:
    mine = await launch(client)
    bobs = await launch(client, username="bob")
    everyone = await call(client, "POST", "/jobs/admin/list", 200, json={"limit": 1})
    assert set(everyone["pagination_key"]) == {"session_id", "gsi_status", "created_timestamp"}
    second = await call(
        client,
        "POST",
        "/jobs/admin/list",
        200,
        json={"limit": 1, "pagination_key": everyone["pagination_key"]},
    )
    assert [everyone["jobs"][0]["session_id"], second["jobs"][0]["session_id"]] == [
        bobs["session_id"],
        mine["session_id"],
    ]
    assert second["pagination_key"] is None
    only_bob = await call(client, "POST", "/jobs/admin/list", 200, json={"username_filter": "bob"})
    assert [j["session_id"] for j in only_bob["jobs"]] == [bobs["session_id"]]


async def test_batch_lists(client: TestClient[Any, Any]) -> None:
    mine = await launch(client, request_batch_id=True)
    bobs = await launch(client, username="bob", request_batch_id=True)
    bob_member = await launch(client, username="bob", add_to_batch=bobs["batch_id"])
    assert detail(
        await call(
            client, "POST", "/jobs/user/list_batch", 401, json={"batch_id": bobs["batch_id"]}
        )
    ) == ("Batch contains items which you do not own. Not authorised.")
    unknown = await call(client, "POST", "/jobs/user/list_batch", 200, json={"batch_id": "none"})
    assert unknown == {"jobs": [], "pagination_key": None}
    admin = await call(
        client,
        "POST",
        "/jobs/admin/list_batch",
        200,
        json={"batch_id": bobs["batch_id"], "username_filter": "bob", "limit": 1},
    )
    assert [j["session_id"] for j in admin["jobs"]] == [bob_member["session_id"]]
    assert set(admin["pagination_key"]) == {"session_id", "batch_id", "created_timestamp"}
    filtered = await call(
        client,
        "POST",
        "/jobs/admin/list_batch",
        200,
        json={"batch_id": bobs["batch_id"], "username_filter": "local"},
    )
    assert filtered["jobs"] == []
    own = await call(
        client, "POST", "/jobs/user/list_batch", 200, json={"batch_id": mine["batch_id"]}
    )
    assert [j["session_id"] for j in own["jobs"]] == [mine["session_id"]]


async def test_retry_refuses_a_job_that_has_not_failed(client: TestClient[Any, Any]) -> None:
    launched = await launch(client)
    for route in ("/jobs/user/retry", "/jobs/admin/retry"):
        params = {"session_id": launched["session_id"]}
        body = await call(client, "POST", route, 400, params=params)
        assert detail(body) == (
            f"Only a FAILED job can be retried; job {launched['session_id']} is PENDING."
        )
        await call(client, "POST", route, 400, params={"session_id": "nope"})
        await call(client, "POST", route, 422)


async def test_cancel_of_a_waiting_job_ends_it_failed_naming_who(
    client: TestClient[Any, Any],
) -> None:
    launched = await launch(client)
    params = {"session_id": launched["session_id"]}
    job = (await call(client, "POST", "/jobs/user/cancel", 200, params=params))["job"]
    assert (job["status"], job["info"]) == ("FAILED", "Cancelled by local.")
    again = await call(client, "POST", "/jobs/user/cancel", 400, params=params)
    assert "already finished" in detail(again)
    retried = await call(client, "POST", "/jobs/user/retry", 200, params=params)
    fetched = await call(
        client, "GET", "/jobs/user/fetch", 200, params={"session_id": retried["session_id"]}
    )
    assert fetched["job"]["retry_of"] == launched["session_id"]
    assert fetched["job"]["payload"] == WAKE["job_payload"]


async def test_fetch_wait_s_is_bounded(client: TestClient[Any, Any]) -> None:
    launched = await launch(client)
    for bad in ("-1", "61", "soon", "nan"):
        params = {"session_id": launched["session_id"], "wait_s": bad}
        problems = detail(await call(client, "GET", "/jobs/user/fetch", 422, params=params))
        assert problems[0]["loc"] == ["query", "wait_s"]


async def test_batch_summary_counts_a_batch(client: TestClient[Any, Any]) -> None:
    first = await launch(client, request_batch_id=True)
    await launch(client, add_to_batch=first["batch_id"])
    summary = await call(
        client, "POST", "/jobs/user/batch_summary", 200, json={"batch_id": first["batch_id"]}
    )
    assert summary["total"] == 2 and summary["counts"]["PENDING"] == 2
    assert summary["done"] is False and summary["all_succeeded"] is False
    unknown = await call(client, "POST", "/jobs/user/batch_summary", 400, json={"batch_id": "x"})
    assert detail(unknown) == "Item was not found."


async def test_unknown_paths_and_methods_answer_in_json(client: TestClient[Any, Any]) -> None:
    assert detail(await call(client, "GET", "/nowhere", 404)) == "Not Found"
    assert detail(await call(client, "GET", "/jobs/admin/launch", 405)) == "Method Not Allowed"


async def test_pool_state(client: TestClient[Any, Any]) -> None:
    await launch(client)
    body = await call(client, "GET", "/admin/pool", 200)
    pools = {p["job_type"]: p for p in body["pools"]}
    assert set(pools) == {"PROV_LODGE", "REGISTRY", "EMAIL", "REPORT"}
    email = pools["EMAIL"]
    assert email["workers"] == {"provisioning": 1, "idle": 0, "busy": 0}
    assert email["waiting"] == 1 and email["cold_starts"] == 1
    assert email["settings"]["max_workers"] == 3
