"""What Provena's own services and UIs send, against a real `jobd serve`: registry-api launching
for its users, CORS preflights from the four UIs, lenient decoding and the reference's error
texts, trailing slashes, /docs."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from provena_jobd.identity import hash_token
from tests.e2e.test_jobs_end_to_end import Api, Start

pytestmark = pytest.mark.acceptance
Json = dict[str, Any]
READ_WRITE = ["job-service-read", "job-service-write"]
TOKENS = {
    "registry-api": ("jobd_registry-api-token", READ_WRITE),  # Provena's realm: read + write only
    "alice": ("jobd_alice-token", []),
    "root": ("jobd_root-token", [*READ_WRITE, "job-service-admin"]),
}
CREATE = {
    "created_item_id": "10378.1/new",
    "created_item_subtype": "MODEL",
    "linked_person_id": "p",
}
DOMAIN = "provena.example"
# The reference's DEV-stage pattern (job-api/config.py dev_cors_generator) for DOMAIN.
PROVENA_ORIGINS = r"(https://.*\.provena\.example|https://provena\.example|https?://localhost:\d*)"
SENTRY_HEADERS = "authorization,content-type,sentry-trace,baggage"


def token_auth(extra: str = "") -> str:
    """An [auth] table in token mode with the TOKENS users."""
    lines = ["[auth]", 'mode = "token"', extra]
    for user, (token, roles) in TOKENS.items():
        lines += [
            "[[auth.tokens]]",
            f'sha256 = "{hash_token(token)}"',
            f'user = "{user}"',
            f"roles = {json.dumps(roles)}",
        ]
    return "\n".join(lines) + "\n"


@pytest.fixture
async def sessions() -> AsyncIterator[dict[str, aiohttp.ClientSession]]:
    """One HTTP session per TOKENS user, sending that user's token."""
    opened = {
        user: aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})
        for user, (token, _) in TOKENS.items()
    }
    yield opened
    for session in opened.values():
        await session.close()


async def test_registry_api_launches_for_its_user_with_read_write_only(
    start: Start, sessions: dict[str, aiohttp.ClientSession]
) -> None:
    api = await start(token_auth())
    registry = Api(sessions["registry-api"], api.url)
    alice = Api(sessions["alice"], api.url)
    launched = await registry.launch(
        "REGISTRY", "REGISTER_CREATE_ACTIVITY", CREATE, username="alice"
    )
    register = await alice.finished(launched["session_id"])  # alice sees it as hers
    assert (register["username"], register["status"]) == ("alice", "SUCCEEDED"), register
    lodge = await alice.finished(register["result"]["lodge_session_id"])
    assert (lodge["username"], lodge["status"]) == ("alice", "SUCCEEDED")
    # ...and launching itself still needs read and write, with the challenge on the 401.
    body = {"job_type": "REGISTRY", "job_sub_type": "REGISTRY_WAKE_UP", "job_payload": {}}
    async with sessions["alice"].post(api.url + "/jobs/admin/launch", json=body) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_restrict_on_behalf_is_opt_in(
    start: Start, sessions: dict[str, aiohttp.ClientSession]
) -> None:
    api = await start(token_auth("restrict_on_behalf = true"))
    body = {
        "job_type": "REGISTRY",
        "job_sub_type": "REGISTER_CREATE_ACTIVITY",
        "job_payload": CREATE,
        "username": "alice",
    }
    async with sessions["registry-api"].post(api.url + "/jobs/admin/launch", json=body) as answer:
        assert answer.status == 401
        assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert "restrict_on_behalf" in (await answer.json())["detail"]
    everyone = await Api(sessions["root"], api.url).call("POST", "/jobs/admin/list", json={})
    assert everyone["jobs"] == []  # the refusal launched nothing
    await Api(sessions["root"], api.url).launch(  # an admin still may
        "REGISTRY", "REGISTER_CREATE_ACTIVITY", CREATE, username="alice"
    )


@pytest.mark.parametrize(
    "origin",
    [
        f"https://registry.{DOMAIN}",
        f"https://data.{DOMAIN}",
        f"https://prov.{DOMAIN}",
        f"https://landing.{DOMAIN}",
        f"https://{DOMAIN}",
        "http://localhost:3000",
    ],
)
async def test_a_preflight_from_each_provena_ui_is_allowed(start: Start, origin: str) -> None:
    api = await start(f"[cors]\nallowed_origin_regex = '{PROVENA_ORIGINS}'\n")
    preflight = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": SENTRY_HEADERS,
    }
    async with api.session.options(api.url + "/jobs/user/list", headers=preflight) as response:
        assert response.status in (200, 204)
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert response.headers["Access-Control-Allow-Credentials"] == "true"
        assert "POST" in response.headers["Access-Control-Allow-Methods"]
        assert response.headers["Access-Control-Allow-Headers"] == SENTRY_HEADERS
    async with api.session.post(
        api.url + "/jobs/user/list", json={}, headers={"Origin": origin, "sentry-trace": "x-y"}
    ) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == origin


@pytest.mark.parametrize(
    "origin", ["https://evil.example", f"https://{DOMAIN}.evil.example", f"http://data.{DOMAIN}"]
)
async def test_other_origins_get_no_cors_headers(start: Start, origin: str) -> None:
    api = await start(f"[cors]\nallowed_origin_regex = '{PROVENA_ORIGINS}'\n")
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    async with api.session.options(api.url + "/jobs/user/list", headers=preflight) as response:
        assert "Access-Control-Allow-Origin" not in response.headers
    async with api.session.post(
        api.url + "/jobs/user/list", json={}, headers={"Origin": origin}
    ) as response:
        assert "Access-Control-Allow-Origin" not in response.headers


async def test_values_the_reference_coerces_are_accepted(start: Start) -> None:
    api = await start()
    first = await api.launch("EMAIL", "EMAIL_WAKE_UP", {}, request_batch_id="true")
    assert first["batch_id"] is not None
    for _ in range(2):
        await api.launch("EMAIL", "EMAIL_WAKE_UP", {}, add_to_batch=first["batch_id"])
    page = await api.call("POST", "/jobs/user/list", json={"limit": "2"})
    assert len(page["jobs"]) == 2 and page["pagination_key"] is not None
    email = {"email_to": "a@example.org", "subject": 2024, "body": "b", "reason": "r"}
    await api.launch("EMAIL", "SEND_EMAIL", email)  # a number for a str, as pydantic v1


async def test_a_bad_request_names_every_problem(start: Start) -> None:
    api = await start()
    body = {
        "job_type": "REPORT",
        "job_sub_type": "GENERATE_REPORT",
        "job_payload": {"id": "x", "item_subtype": "STUDY", "depth": "deep"},
    }
    answer = await api.call("POST", "/jobs/admin/launch", expect=400, json=body)
    assert answer["detail"] == (
        "Invalid payload supplied: Failed to parse the payload as specified job type. "
        "Err: 2 validation errors for ReportGeneratePayload\n"
        "depth\n  value is not a valid integer (type=type_error.integer)\n"
        "user_info\n  field required (type=value_error.missing)."
    )
    answer = await api.call(
        "POST", "/jobs/admin/list", expect=422, json={"limit": "many", "username_filter": []}
    )
    assert [(p["loc"], p["type"]) for p in answer["detail"]] == [
        (["body", "username_filter"], "type_error.str"),
        (["body", "limit"], "type_error.integer"),
    ]
    assert (await api.call("POST", "/jobs/admin/list", json={}))["jobs"] == []


async def test_a_trailing_slash_redirects_307_keeping_the_query(start: Start) -> None:
    api = await start()
    session_id = (await api.launch("EMAIL", "EMAIL_WAKE_UP", {}))["session_id"]
    async with api.session.get(
        api.url + f"/jobs/user/fetch/?session_id={session_id}", allow_redirects=False
    ) as response:
        assert response.status == 307
        assert response.headers["Location"].endswith(f"/jobs/user/fetch?session_id={session_id}")
    async with api.session.get(
        api.url + "/jobs/user/fetch/", params={"session_id": session_id}
    ) as followed:
        assert followed.status == 200
        assert (await followed.json())["job"]["session_id"] == session_id
    async with api.session.post(
        api.url + "/jobs/user/list/", json={}, allow_redirects=False
    ) as response:
        assert response.status == 307
    async with api.session.get(api.url + "/no/such/route/", allow_redirects=False) as response:
        assert response.status == 404


async def test_docs_and_redoc_are_served_by_jobd_itself(start: Start) -> None:
    api = await start()
    for route, needed in [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")]:
        async with api.session.get(api.url + route) as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            page = await response.text()
        assert "/openapi.json" in page
        assets = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert any(a.endswith(needed) for a in assets)
        for asset in assets:  # all served by jobd: the page needs no internet
            assert asset.startswith(route + "/assets/"), asset
            async with api.session.get(api.url + asset) as response:
                assert response.status == 200, asset
                assert len(await response.read()) > 500
    document = await api.call("GET", "/openapi.json")
    for jobd_route in (
        "/admin/pool",
        "/jobs/user/workflow",
        "/jobs/user/retry",
        "/jobs/user/events",
    ):
        assert jobd_route in document["paths"]
