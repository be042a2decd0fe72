"""Secrets in the configuration: how a field is marked secret, and how it is kept hidden.

A settings field is secret when its type is `Secret[...]`. `/admin/config` shows such a
field as `<redacted>` (a table of secrets keeps its keys), and the log redacts any secret's
value wherever it appears in a message.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Set
from typing import Annotated, Any, TypeVar

import msgspec

T = TypeVar("T")
REDACTED = "<redacted>"


class _SecretMarker:
    """The annotation that marks a settings field secret."""

    def __repr__(self) -> str:
        return "SECRET"


SECRET = _SecretMarker()
Secret = Annotated[T, SECRET]


def secret_fields(kind: type[msgspec.Struct]) -> frozenset[str]:
    """The names of a settings struct's fields that are marked `Secret`."""
    hints = typing.get_type_hints(kind, include_extras=True)
    return frozenset(
        name
        for name in kind.__struct_fields__
        if typing.get_origin(hints[name]) is Annotated and SECRET in hints[name].__metadata__
    )


# Shorter values are not searched for in log lines: they would blank out ordinary words
# (an env value such as "jobs" or "true"). /admin/config hides them all the same.
MIN_LOGGED_SECRET = 6


def secret_values(settings: msgspec.Struct) -> set[str]:
    """Every string of `MIN_LOGGED_SECRET` or more characters held in a secret field."""
    found: set[str] = set()

    def strings(value: Any) -> Iterator[str]:
        if isinstance(value, str):
            yield value
        elif isinstance(value, msgspec.Struct):
            for name in value.__struct_fields__:
                yield from strings(getattr(value, name))
        elif isinstance(value, dict):
            for item in value.values():
                yield from strings(item)
        elif isinstance(value, list | tuple):
            for item in value:
                yield from strings(item)

    def walk(value: Any) -> None:
        if isinstance(value, msgspec.Struct):
            secret = secret_fields(type(value))
            for name in value.__struct_fields__:
                field = getattr(value, name)
                if name in secret:
                    found.update(s for s in strings(field) if len(s) >= MIN_LOGGED_SECRET)
                else:
                    walk(field)
        elif isinstance(value, str):
            password = url_password(value)  # `postgresql://user:password@host/...`
            if password is not None and len(password) >= MIN_LOGGED_SECRET:
                found.add(password)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(settings)
    return found


def url_password(text: str) -> str | None:
    """The password of a URL written `scheme://user:password@host...`; None without one."""
    _, separator, rest = text.partition("://")
    credentials, at, _ = rest.partition("/")[0].rpartition("@")
    if not separator or not at or ":" not in credentials:
        return None
    return credentials.partition(":")[2] or None


def redact(text: str, secrets: Set[str]) -> str:
    """`text` with every secret value replaced by `<redacted>` (longest first)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_cut(text: str, secrets: Set[str]) -> str:
    """`redact(text)` for text cut short: a secret's beginning left at its end is redacted
    too (the longest one found; even one character, since the rest of the line is lost)."""
    text = redact(text, secrets)
    starts = (secret[:n] for secret in secrets for n in range(1, len(secret)))
    size = max((len(start) for start in starts if text.endswith(start)), default=0)
    return text[:-size] + REDACTED if size else text
