"""Who is calling and what they may do: identities, rights and the authenticators.

Three modes, as configured in `[auth]`:

- `none`: every request is the configured local user, holding every role;
- `jwt`: Keycloak-compatible RS256 bearer tokens (user `preferred_username`, roles
  `realm_access.roles`), verified with PyJWT against a PEM file, a JWKS file or the realm's
  published `public_key` (re-fetched when a signature fails, so a rotated key is picked up);
- `token`: static API tokens, stored in the config only as SHA-256 hashes.

In modes `jwt` and `token`, the worker processes jobd starts (`[pool.<TYPE>] command`) claim
with a token jobd makes for them as it starts (`ProcessWorkerAuth`): it lives only in memory
and in those processes' environment, and grants the worker role alone.

Failures raise `Unauthenticated` with the reference's `detail` texts.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import jwt

from .clock import Clock
from .config import AuthSettings, RoleNames
from .errors import ConfigError, Unauthenticated

NOT_AUTHENTICATED = "Not authenticated"
INVALID_CREDENTIALS = "Could not validate credentials"
INCORRECT_STRUCTURE = "Token had incorrect structure."
MISSING_ROLE = "You are not authorised to access this resource as you don't have the correct role."
TOKEN_PREFIX = "jobd_"
# Who the worker processes jobd started are, as callers.
PROCESS_WORKER_USER = "jobd-worker-process"
KEY_REFRESH_INTERVAL_S = 30.0


class Right(enum.Enum):
    """The rights the job service's roles grant."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"
    WORKER = "worker"  # may claim and finish jobs over the worker protocol


@dataclass(frozen=True)
class Identity:
    """An authenticated caller."""

    username: str
    roles: frozenset[str]
    rights: frozenset[Right]
    email: str | None = None
    token: str | None = None


def rights_of(roles: Iterable[str], names: RoleNames) -> frozenset[Right]:
    """The rights a set of realm roles grants under the configured role names."""
    held = set(roles)
    by_role = {
        names.read: Right.READ,
        names.write: Right.WRITE,
        names.admin: Right.ADMIN,
        names.worker: Right.WORKER,
    }
    rights = {right for role, right in by_role.items() if role in held}
    if Right.ADMIN in rights:
        rights.add(Right.WORKER)  # an admin may do anything, running jobs included
    return frozenset(rights)


def may_act_for_others(identity: Identity, settings: AuthSettings) -> bool:
    """May this caller launch for another `username`? As the reference, yes (the launch route
    already demands read and write); with `restrict_on_behalf`, only admins and the
    `service_accounts`."""
    if not settings.restrict_on_behalf:
        return True
    return Right.ADMIN in identity.rights or identity.username in settings.service_accounts


class Authenticator(Protocol):
    """Turns an Authorization header into an identity."""

    async def authenticate(self, authorization: str | None) -> Identity:
        """The caller, or Unauthenticated."""
        ...


def bearer_token(authorization: str | None) -> str:
    """The token of a `Bearer` header, or the reference's "Not authenticated"."""
    if not authorization:
        raise Unauthenticated(NOT_AUTHENTICATED)
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(NOT_AUTHENTICATED)
    return token.strip()


class DenyAll:
    """Until jobd has started (its keys loaded): nobody is authenticated."""

    async def authenticate(self, authorization: str | None) -> Identity:
        """Always Unauthenticated."""
        raise Unauthenticated(NOT_AUTHENTICATED)


class NoAuth:
    """Mode `none`: the header is ignored; everyone is the local user with every role."""

    def __init__(self, settings: AuthSettings) -> None:
        names = settings.roles
        roles = frozenset({names.read, names.write, names.admin, names.worker})
        self._identity = Identity(settings.local_user, roles, rights_of(roles, names))

    async def authenticate(self, authorization: str | None) -> Identity:
        """Always the local user."""
        return self._identity


def hash_token(token: str) -> str:
    """The SHA-256 hex digest kept in the config instead of the token.

    API tokens are 256 random bits, so a fast hash is enough: there is nothing to guess.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    """A fresh API token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class TokenAuth:
    """Mode `token`: static API tokens looked up by their hash."""

    def __init__(self, settings: AuthSettings) -> None:
        self._by_hash = {
            entry.sha256: Identity(
                entry.user,
                frozenset(entry.roles),
                rights_of(entry.roles, settings.roles),
            )
            for entry in settings.tokens
        }

    async def authenticate(self, authorization: str | None) -> Identity:
        """The token's user, or "Could not validate credentials"."""
        token = bearer_token(authorization)
        identity = self._by_hash.get(hash_token(token))
        if identity is None:
            raise Unauthenticated(INVALID_CREDENTIALS)
        return Identity(identity.username, identity.roles, identity.rights, token=token)


class JwtAuth:
    """Mode `jwt`: RS256 bearer tokens checked with PyJWT."""

    def __init__(self, settings: AuthSettings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self._keys: dict[str | None, Any] = {}
        self._fetched_at = float("-inf")

    async def load_keys(self) -> None:
        """Read (or fetch) the verification keys; a startup failure is a ConfigError."""
        settings = self.settings
        if settings.public_key_file:
            self._keys = {None: _read_pem(Path(settings.public_key_file))}
        elif settings.jwks_file:
            self._keys = _read_jwks(Path(settings.jwks_file))
        elif settings.realm_url:
            # The first refresh may follow at once: a key may rotate right after startup.
            self._keys = {None: await _fetch_realm_key(settings.realm_url)}

    async def authenticate(self, authorization: str | None) -> Identity:
        """Verify the token; on a bad signature, refresh a realm key once and try again."""
        token = bearer_token(authorization)
        try:
            claims = self._decode(token)
        except jwt.InvalidSignatureError:
            if not await self._refresh():
                raise Unauthenticated(INVALID_CREDENTIALS) from None
            try:
                claims = self._decode(token)
            except jwt.PyJWTError:
                raise Unauthenticated(INVALID_CREDENTIALS) from None
        except jwt.PyJWTError:
            raise Unauthenticated(INVALID_CREDENTIALS) from None
        realm_access = claims.get("realm_access")
        username = claims.get("preferred_username")
        if not isinstance(realm_access, dict) or not isinstance(username, str):
            raise Unauthenticated(INCORRECT_STRUCTURE)
        roles = realm_access.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Unauthenticated(INCORRECT_STRUCTURE)
        email = claims.get("email")
        return Identity(
            username,
            frozenset(roles),
            rights_of(roles, self.settings.roles),
            email=email if isinstance(email, str) else None,
            token=token,
        )

    def _decode(self, token: str) -> dict[str, Any]:
        header = jwt.get_unverified_header(token)
        key = self._keys.get(header.get("kid")) or self._keys.get(None)
        if key is None and len(self._keys) == 1:
            key = next(iter(self._keys.values()))
        if key is None:
            raise jwt.InvalidSignatureError("no key for this token's kid")
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=self.settings.audience,
            issuer=self.settings.issuer,
            options={"require": ["exp"], "verify_aud": self.settings.audience is not None},
            leeway=0,
        )
        return claims

    async def _refresh(self) -> bool:
        """Re-fetch the realm key (at most every 30 s, so bad tokens cannot make jobd hammer
        the realm); True if a new key arrived."""
        url = self.settings.realm_url
        now = self.clock.now()
        if url is None or now - self._fetched_at < KEY_REFRESH_INTERVAL_S:
            return False
        self._fetched_at = now
        try:
            key = await _fetch_realm_key(url)
        except ConfigError:
            return False
        if key == self._keys.get(None):
            return False
        self._keys = {None: key}
        return True


class ProcessWorkerAuth:
    """Accepts the token jobd made for the worker processes it starts, as the worker role
    alone; every other caller is left to the configured authenticator.

    jobd cannot mint a Keycloak token, and one pasted into a pool's `env` would expire while
    its processes still run; this token lives as long as this jobd process.
    """

    def __init__(self, inner: Authenticator, token: str, settings: AuthSettings) -> None:
        self.inner = inner
        self._digest = hash_token(token)  # compared as a hash: no timing tells how much matched
        roles = frozenset({settings.roles.worker})
        self._identity = Identity(PROCESS_WORKER_USER, roles, rights_of(roles, settings.roles))

    async def authenticate(self, authorization: str | None) -> Identity:
        """A worker process of this jobd, or whoever the configured authenticator finds."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and secrets.compare_digest(
            hash_token(token.strip()), self._digest
        ):
            return self._identity
        return await self.inner.authenticate(authorization)


async def make_authenticator(settings: AuthSettings, clock: Clock) -> Authenticator:
    """The authenticator for the configured mode, with its keys loaded."""
    if settings.mode == "jwt":
        authenticator = JwtAuth(settings, clock)
        await authenticator.load_keys()
        return authenticator
    if settings.mode == "token":
        return TokenAuth(settings)
    return NoAuth(settings)


def _read_pem(path: Path) -> str:
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read auth.public_key_file {path}: {exc.strerror}") from None
    if "BEGIN PUBLIC KEY" not in text:
        raise ConfigError(f"auth.public_key_file {path} is not a PEM public key")
    return text


def _read_jwks(path: Path) -> dict[str | None, Any]:
    try:
        document = json.loads(path.read_text("utf-8"))
        key_set = jwt.PyJWKSet.from_dict(document)
    except (OSError, ValueError, jwt.PyJWTError) as exc:
        raise ConfigError(f"cannot use auth.jwks_file {path}: {exc}") from None
    return {key.key_id: key.key for key in key_set.keys}


async def _fetch_realm_key(url: str) -> str:
    """GET the realm document and turn its base64 `public_key` into a PEM."""
    try:
        timeout = aiohttp.ClientTimeout(total=3)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as resp:
            resp.raise_for_status()
            document = await resp.json(content_type=None)
        encoded = document["public_key"]
        base64.b64decode(encoded, validate=True)
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot fetch the realm's public_key from {url}: {exc}") from None
    lines = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"
