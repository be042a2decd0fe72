"""Shared helpers of the auth suites: RSA keys that mint tokens, servers in any auth mode,
and a well-formed request for every protected route."""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from provena_jobd.config import Settings
from provena_jobd.http.app import create_app
from provena_jobd.http.auth import Access
from provena_jobd.http.routes import ROUTES
from provena_jobd.server import JobdServer
from tests.helpers import ServedAsJobd, settings_for

READ, WRITE, ADMIN = "job-service-read", "job-service-write", "job-service-admin"
NOT_AUTHENTICATED = "Not authenticated"
INVALID = "Could not validate credentials"
STRUCTURE = "Token had incorrect structure."
MISSING_ROLE = "You are not authorised to access this resource as you don't have the correct role."
WAKE = {"job_type": "EMAIL", "job_sub_type": "EMAIL_WAKE_UP", "job_payload": {}}
Client = TestClient[Any, Any]


class Keys:
    """An RSA key pair and a token minter."""

    def __init__(self) -> None:
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_pem = (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def public_der_b64(self) -> str:
        der = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def token(
        self,
        user: str = "alice",
        roles: list[str] | None = None,
        expires_in: float = 300,
        kid: str | None = None,
        **claims: Any,
    ) -> str:
        body: dict[str, Any] = {
            "preferred_username": user,
            "email": f"{user}@example.org",
            "realm_access": {"roles": [READ, WRITE, ADMIN] if roles is None else roles},
            "exp": int(time.time() + expires_in),
            **claims,
        }
        headers = {"kid": kid} if kid else None
        return jwt.encode(body, self.private, algorithm="RS256", headers=headers)


@pytest.fixture(scope="module")
def keys() -> Keys:
    """The realm's keys, shared by the module's tests."""
    return Keys()


@pytest.fixture(scope="module")
def other_keys() -> Keys:
    """Keys the realm does not know."""
    return Keys()


async def serve(settings: Settings) -> tuple[JobdServer, TestClient[Any, Any]]:
    """Start a server and a test client on it."""
    server = JobdServer(settings)
    await server.start()
    client: Client = TestClient(ServedAsJobd(create_app(server)))
    await client.start_server()
    return server, client


Started = Callable[..., Awaitable[Client]]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Started]:
    """Start servers whose workers never become ready; stops them all afterwards."""
    running: list[tuple[JobdServer, Client]] = []

    async def starter(**sections: dict[str, Any]) -> Client:
        pair = await serve(settings_for(tmp_path, pool={"cold_start_s": 1e9}, **sections))
        running.append(pair)
        return pair[1]

    yield starter
    for server, client in running:
        await client.close()
        await server.stop(grace_s=0)


@pytest.fixture
async def jwt_client(start: Started, keys: Keys, tmp_path: Path) -> Client:
    """A client of a server that checks tokens against `keys`."""
    pem = tmp_path / "realm.pem"
    pem.write_text(keys.public_pem)
    return await start(auth={"mode": "jwt", "public_key_file": str(pem)})


def bearer(token: str) -> dict[str, str]:
    """The header that sends `token`."""
    return {"Authorization": f"Bearer {token}"}


def request_for(path: str) -> dict[str, Any]:
    """A well-formed request for each route, so only auth can refuse it."""
    bodies: dict[str, Any] = {
        "/jobs/user/list": {},
        "/jobs/admin/list": {},
        "/jobs/user/list_batch": {"batch_id": "b"},
        "/jobs/admin/list_batch": {"batch_id": "b"},
        "/jobs/admin/launch": WAKE,
    }
    if path in bodies:
        return {"json": bodies[path]}
    if path.endswith(("fetch", "retry")):
        return {"params": {"session_id": "x"}}
    return {}


PROTECTED = [(r.method, r.path, r.access) for r in ROUTES if r.access is not Access.PUBLIC]
