"""The checks of `[auth]` at startup: each mode needs its own settings, and a setting the
mode in force ignores is refused rather than silently dropped.

Why refuse: a config that sets up tokens or a JWT issuer but leaves `mode` at its default
("none") looks secured and is not: anyone acts with every role. One clear line says which
setting is ignored and what to do.
"""

from __future__ import annotations

import re

from .errors import ConfigError
from .settings import AuthSettings

# The settings only mode "jwt" reads.
JWT_SETTINGS = ("public_key_file", "realm_url", "jwks_file", "issuer", "audience")


def check_auth(auth: AuthSettings) -> None:
    """Each auth mode needs its own settings, and only those."""
    everyone = " and lets anyone act with every role" if auth.mode == "none" else ""
    if auth.tokens and auth.mode != "token":  # pasting only [[auth.tokens]] left mode "none"
        raise ConfigError(
            f'[[auth.tokens]] are configured but auth.mode is "{auth.mode}", which ignores them'
            f'{everyone}: set mode = "token" under [auth], or remove the tokens'
        )
    ignored = [f"auth.{key}" for key in JWT_SETTINGS if getattr(auth, key) is not None]
    if ignored and auth.mode != "jwt":
        verb, them = ("is", "it") if len(ignored) == 1 else ("are", "them")
        raise ConfigError(
            f'{", ".join(ignored)} {verb} set but auth.mode is "{auth.mode}", which ignores '
            f'{them}{everyone}: set mode = "jwt" under [auth], or remove {them}'
        )
    if auth.mode == "jwt":
        sources = [k for k in ("public_key_file", "realm_url", "jwks_file") if getattr(auth, k)]
        if len(sources) != 1:
            raise ConfigError(
                'auth.mode = "jwt" needs exactly one of auth.public_key_file, '
                f"auth.realm_url or auth.jwks_file (got {len(sources)})"
            )
    if auth.mode == "token":
        if not auth.tokens:
            raise ConfigError(
                'auth.mode = "token" needs at least one [[auth.tokens]] entry '
                "(create one with: jobd token create --user NAME --roles ...)"
            )
        names = auth.roles
        known = (names.read, names.write, names.admin, names.worker)
        for token in auth.tokens:
            if not re.fullmatch(r"[0-9a-f]{64}", token.sha256):
                raise ConfigError(
                    f"auth.tokens: sha256 for user {token.user!r} is not 64 hex digits"
                )
            # A role no route checks would leave the token refused everywhere, silently.
            unknown = [role for role in token.roles if role not in known]
            if unknown:
                raise ConfigError(
                    f"auth.tokens: user {token.user!r} has unknown role {unknown[0]!r} "
                    f"(roles: {', '.join(known)}; [auth.roles] renames them)"
                )
