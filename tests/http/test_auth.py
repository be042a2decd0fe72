"""Authentication and authorisation over HTTP: every route against every kind of bad caller.

Keys and tokens are made here (auth_helpers.py); nothing is fetched from outside this
machine.
"""

from __future__ import annotations

import json
from pathlib import Path

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from provena_jobd.http.app import create_app
from provena_jobd.http.auth import Access
from provena_jobd.identity import hash_token
from provena_jobd.server import JobdServer
from tests.helpers import ServedAsJobd, settings_for
from tests.http.auth_helpers import (
    ADMIN,
    INVALID,
    MISSING_ROLE,
    NOT_AUTHENTICATED,
    PROTECTED,
    READ,
    STRUCTURE,
    WAKE,
    WRITE,
    Client,
    Keys,
    Started,
    bearer,
    request_for,
)
from tests.http.auth_helpers import jwt_client as jwt_client
from tests.http.auth_helpers import keys as keys
from tests.http.auth_helpers import other_keys as other_keys
from tests.http.auth_helpers import start as start


@pytest.mark.parametrize(("method", "path", "access"), PROTECTED)
async def test_every_protected_route_refuses_bad_callers(
    jwt_client: Client, keys: Keys, other_keys: Keys, method: str, path: str, access: Access
) -> None:
    cases: list[tuple[dict[str, str], str]] = [
        ({}, NOT_AUTHENTICATED),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, NOT_AUTHENTICATED),
        (bearer("not.a.jwt"), INVALID),
        (bearer(other_keys.token()), INVALID),  # bad signature
        (bearer(keys.token(expires_in=-10)), INVALID),  # expired
        (bearer(keys.token(realm_access=None)), STRUCTURE),
    ]
    for headers, expected in cases:
        response = await jwt_client.request(method, path, headers=headers, **request_for(path))
        assert response.status == 401, (headers, await response.text())
        assert await response.json() == {"detail": expected}
        assert response.headers["WWW-Authenticate"] == "Bearer"
    # A valid token without roles: enough for user routes, refused everywhere else.
    response = await jwt_client.request(
        method, path, headers=bearer(keys.token(roles=[])), **request_for(path)
    )
    if access is Access.USER:
        assert response.status != 401 or (await response.json())["detail"] != MISSING_ROLE
    else:
        assert response.status == 401
        assert await response.json() == {"detail": MISSING_ROLE}
    # Every role: auth lets it through (the route may still refuse the request itself).
    response = await jwt_client.request(
        method, path, headers=bearer(keys.token()), **request_for(path)
    )
    assert response.status != 401, await response.text()


@pytest.mark.parametrize(
    ("roles", "allowed"),
    [
        ([READ], {"general", "read"}),
        ([READ, WRITE], {"general", "read", "write"}),
        ([WRITE, ADMIN], {"general"}),  # all-of: write and admin mean nothing without read
        ([READ, WRITE, ADMIN], {"general", "read", "write", "admin"}),
    ],
)
async def test_check_access_follows_the_all_of_role_rules(
    jwt_client: Client, keys: Keys, roles: list[str], allowed: set[str]
) -> None:
    token = keys.token(user="carol", roles=roles)
    for level in ("general", "read", "write", "admin"):
        response = await jwt_client.get(
            f"/check-access/check-{level}-access", headers=bearer(token)
        )
        if level in allowed:
            assert response.status == 200
            assert await response.json() == {
                "username": "carol",
                "email": "carol@example.org",
                "roles": sorted(roles),
                "access_token": token,
            }
        else:
            assert response.status == 401


async def test_users_see_only_their_own_jobs(jwt_client: Client, keys: Keys) -> None:
    alice, bob = bearer(keys.token("alice")), bearer(keys.token("bob", roles=[]))
    launched = await (await jwt_client.post("/jobs/admin/launch", json=WAKE, headers=alice)).json()
    batch = await (
        await jwt_client.post(
            "/jobs/admin/launch", json={**WAKE, "request_batch_id": True}, headers=alice
        )
    ).json()
    response = await jwt_client.get(
        "/jobs/user/fetch", params={"session_id": launched["session_id"]}, headers=bob
    )
    assert (response.status, await response.json()) == (
        401,
        {"detail": "Not authorised to view this record."},
    )
    assert response.headers["WWW-Authenticate"] == "Bearer"  # as every other 401
    response = await jwt_client.post("/jobs/user/list", json={}, headers=bob)
    assert (await response.json())["jobs"] == []
    response = await jwt_client.post(
        "/jobs/user/list_batch", json={"batch_id": batch["batch_id"]}, headers=bob
    )
    assert response.status == 401
    response = await jwt_client.post("/jobs/user/list", json={}, headers=alice)
    assert len((await response.json())["jobs"]) == 2
    # The routes jobd adds follow the same rule, and leak nothing but the refusal.
    params = {"session_id": launched["session_id"]}
    for method, path in [
        ("GET", "/jobs/user/workflow"),
        ("POST", "/jobs/user/retry"),
        ("POST", "/jobs/user/cancel"),
    ]:
        response = await jwt_client.request(method, path, params=params, headers=bob)
        assert (response.status, await response.json()) == (
            401,
            {"detail": "Not authorised to view this record."},
        )
    response = await jwt_client.post(
        "/jobs/user/batch_summary", json={"batch_id": batch["batch_id"]}, headers=bob
    )
    assert (response.status, await response.json()) == (
        401,
        {"detail": "Batch contains items which you do not own. Not authorised."},
    )
    response = await jwt_client.get("/jobs/user/fetch", params=params, headers=alice)
    assert (await response.json())["job"]["status"] == "PENDING"  # bob's cancel changed nothing


async def test_restrict_on_behalf_needs_admin_or_a_service_account(
    start: Started, keys: Keys, tmp_path: Path
) -> None:
    pem = tmp_path / "realm.pem"
    pem.write_text(keys.public_pem)
    client = await start(
        auth={
            "mode": "jwt",
            "public_key_file": str(pem),
            "service_accounts": ["registry-api"],
            "restrict_on_behalf": True,
        }
    )
    writer = bearer(keys.token("mallory", roles=[READ, WRITE]))
    body = {**WAKE, "username": "alice"}
    response = await client.post("/jobs/admin/launch", json=body, headers=writer)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "another user" in (await response.json())["detail"]
    for caller in (keys.token("registry-api", roles=[READ, WRITE]), keys.token("root")):
        response = await client.post("/jobs/admin/launch", json=body, headers=bearer(caller))
        assert response.status == 200
    everyone = await client.post("/jobs/admin/list", json={}, headers=bearer(keys.token("root")))
    assert [j["username"] for j in (await everyone.json())["jobs"]] == ["alice", "alice"]


async def test_issuer_and_audience_are_checked_when_configured(
    start: Started, keys: Keys, tmp_path: Path
) -> None:
    pem = tmp_path / "realm.pem"
    pem.write_text(keys.public_pem)
    client = await start(
        auth={
            "mode": "jwt",
            "public_key_file": str(pem),
            "issuer": "https://kc/realms/provena",
            "audience": "job-api",
        }
    )
    good = keys.token(iss="https://kc/realms/provena", aud="job-api")
    for token, status in [
        (good, 200),
        (keys.token(iss="https://evil/realms/provena", aud="job-api"), 401),
        (keys.token(iss="https://kc/realms/provena", aud="other"), 401),
        (keys.token(), 401),
    ]:
        response = await client.get("/check-access/check-general-access", headers=bearer(token))
        assert response.status == status


async def test_role_names_are_configurable(start: Started, keys: Keys, tmp_path: Path) -> None:
    pem = tmp_path / "realm.pem"
    pem.write_text(keys.public_pem)
    client = await start(
        auth={"mode": "jwt", "public_key_file": str(pem), "roles": {"read": "jobs-viewer"}}
    )
    viewer = bearer(keys.token(roles=["jobs-viewer"]))
    assert (await client.post("/jobs/admin/list", json={}, headers=viewer)).status == 200
    reader = bearer(keys.token(roles=[READ]))
    assert (await client.post("/jobs/admin/list", json={}, headers=reader)).status == 401


async def test_a_jwks_file_with_key_ids(
    start: Started, keys: Keys, other_keys: Keys, tmp_path: Path
) -> None:
    jwks = {
        "keys": [
            {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.private.public_key())), "kid": kid}
            for kid, k in (("one", keys), ("two", other_keys))
        ]
    }
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    client = await start(auth={"mode": "jwt", "jwks_file": str(path)})
    for token, status in [
        (keys.token(kid="one"), 200),
        (other_keys.token(kid="two"), 200),
        (keys.token(kid="two"), 401),
        (keys.token(kid="three"), 401),
    ]:
        response = await client.get("/check-access/check-general-access", headers=bearer(token))
        assert response.status == status


async def test_the_realm_key_is_fetched_and_refreshed_after_rotation(
    start: Started, keys: Keys, other_keys: Keys
) -> None:
    current = {"key": keys}

    async def realm(request: web.Request) -> web.Response:
        return web.json_response(
            {"realm": "provena", "public_key": current["key"].public_der_b64()}
        )

    app = web.Application()
    app.router.add_get("/auth/realms/provena", realm)
    async with TestServer(app, host="127.0.0.1") as keycloak:
        url = str(keycloak.make_url("/auth/realms/provena"))
        client = await start(auth={"mode": "jwt", "realm_url": url})
        path = "/check-access/check-general-access"
        assert (await client.get(path, headers=bearer(keys.token()))).status == 200
        current["key"] = other_keys  # the realm rotates its key
        assert (await client.get(path, headers=bearer(other_keys.token()))).status == 200
        assert (await client.get(path, headers=bearer(keys.token()))).status == 401


async def test_static_tokens(start: Started) -> None:
    token = "jobd_test-token-for-the-suite"
    client = await start(
        auth={
            "mode": "token",
            "tokens": [{"sha256": hash_token(token), "user": "svc", "roles": [READ, WRITE]}],
        }
    )
    response = await client.get("/check-access/check-write-access", headers=bearer(token))
    assert (await response.json())["username"] == "svc"
    response = await client.get("/check-access/check-admin-access", headers=bearer(token))
    assert (response.status, (await response.json())["detail"]) == (401, MISSING_ROLE)
    response = await client.get("/check-access/check-general-access", headers=bearer("jobd_x"))
    assert (response.status, (await response.json())["detail"]) == (401, INVALID)
    config = await client.get("/admin/config", headers=bearer(token))
    assert config.status == 401


async def test_admin_config_is_an_attachment_with_secrets_redacted(start: Started) -> None:
    token = "jobd_admin-token"
    digest = hash_token(token)
    client = await start(
        auth={
            "mode": "token",
            "tokens": [{"sha256": digest, "user": "root", "roles": [READ, WRITE, ADMIN]}],
        }
    )
    response = await client.get("/admin/config", headers=bearer(token))
    assert response.status == 200 and response.content_type == "text/plain"
    assert response.headers["Content-Disposition"] == 'attachment; filename="config.txt"'
    text = await response.text()
    assert "auth.mode=token\n" in text and "pool.max_workers=3\n" in text
    assert digest not in text
    assert "auth.tokens=[{'sha256': '<redacted>', 'user': 'root', 'roles': [" in text


async def test_none_mode_acts_as_the_local_user_with_every_role(start: Started) -> None:
    client = await start(auth={"local_user": "dev"})
    response = await client.get(
        "/check-access/check-admin-access", headers={"Authorization": "Bearer junk"}
    )
    assert (await response.json())["username"] == "dev"


async def test_cors_only_for_configured_origins(start: Started) -> None:
    client = await start(cors={"allowed_origins": ["https://ui.example.org"]})
    allowed = {"Origin": "https://ui.example.org"}
    response = await client.get("/", headers=allowed)
    assert response.headers["Access-Control-Allow-Origin"] == "https://ui.example.org"
    preflight = await client.options(
        "/jobs/admin/launch",
        headers={**allowed, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 204
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    response = await client.get("/", headers={"Origin": "https://evil.example.org"})
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_cors_allowed_headers_can_be_limited(start: Started) -> None:
    client = await start(
        cors={"allowed_origins": ["https://ui.example.org"], "allowed_headers": ["Authorization"]}
    )
    preflight = await client.options(
        "/jobs/admin/launch",
        headers={
            "Origin": "https://ui.example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,x-secret",
        },
    )
    assert preflight.headers["Access-Control-Allow-Headers"] == "Authorization"


async def test_no_cors_by_default(start: Started) -> None:
    client = await start()
    response = await client.get("/", headers={"Origin": "https://ui.example.org"})
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_an_engine_that_has_not_started_lets_nobody_in(tmp_path: Path) -> None:
    # Even in auth mode `none`, until `start()` has loaded the configured authenticator.
    server = JobdServer(settings_for(tmp_path))
    async with TestClient(ServedAsJobd(create_app(server))) as client:
        response = await client.get("/jobs/admin/fetch", params={"session_id": "x"})
        assert response.status == 401
        assert (await response.json()) == {"detail": NOT_AUTHENTICATED}
        assert (await client.get("/")).status == 200  # public routes still answer
