"""Secrets in the configuration: how a field is marked secret, and how it is kept hidden.

A settings field is secret when its type is `Secret[...]`. `/admin/config` shows such a
field as `<redacted>` (a table of secrets keeps its keys), and the log redacts any secret's
value wherever it appears in a message.
"""

from __future__ import annotations

import typing
import urllib.parse
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
        elif isinstance(value, str):  # `postgresql://user:password@host/...`
            found.update(p for p in url_passwords(value) if len(p) >= MIN_LOGGED_SECRET)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)

    walk(settings)
    return found


def url_passwords(text: str) -> list[str]:
    """The passwords a URL holds, as written and decoded: its user part's
    (`scheme://user:password@host...`) and a `password=` query parameter (libpq's, which
    asyncpg reads too)."""
    split = _split(text)
    if split is None:
        return []
    _, credentials, host_and_rest = split
    found = [credentials.partition(":")[2]] if ":" in credentials else []
    found += [p for p in _query_parameters(host_and_rest, "password")[0] if p]
    return [*found, *(urllib.parse.unquote(p) for p in found)]


def shown_url(text: str) -> str:
    """A URL (a database setting, most often) as messages may show it: without its
    passwords. Anything else as it is."""
    split = _split(text)
    if split is None:
        return text
    scheme, credentials, host_and_rest = split
    passwords, without = _query_parameters(host_and_rest, "password")
    if ":" not in credentials and not passwords:
        return text  # nothing to hide: as written (`sqlite:////tmp/x.db` stays so)
    user = f"{credentials.partition(':')[0]}@" if credentials else ""
    return f"{scheme}://{user}{without}"


# Database URLs, which asyncpg reads leniently: a password with an unencoded `/` still works.
_DATABASE_SCHEMES = frozenset({"postgres", "postgresql"})


def _split(text: str) -> tuple[str, str, str] | None:
    """A URL as (scheme, its credentials, the rest from the host on); None for anything else
    (a file path). The credentials end at the `@` before the host: the last one before the
    first `/`, preferring one before a `?`; for a database URL with none there, the last `@`
    before the query (a password with an unencoded `/`)."""
    scheme, separator, after = text.partition("://")
    if not separator or not scheme.replace("+", "").isalnum():
        return None
    head = after.partition("/")[0]
    before_query = head.partition("?")[0]
    if "@" in before_query:
        credentials = before_query.rpartition("@")[0]
    elif "@" in head:
        credentials = head.rpartition("@")[0]  # a `?` in the password
    elif scheme in _DATABASE_SCHEMES and "@" in after.partition("?")[0]:
        credentials = after.partition("?")[0].rpartition("@")[0]
    else:
        return scheme, "", after
    return scheme, credentials, after[len(credentials) + 1 :]


def _query_parameters(host_and_rest: str, name: str) -> tuple[list[str], str]:
    """The values of a query parameter as written, and the URL part without it."""
    base, mark, query = host_and_rest.partition("?")
    query, hash_mark, fragment = query.partition("#")
    kept, values = [], []
    for pair in query.split("&") if mark else []:
        key, _, value = pair.partition("=")
        (values.append(value) if key == name else kept.append(pair))
    rebuilt = base + (f"?{'&'.join(kept)}" if kept else "") + hash_mark + fragment
    return values, rebuilt


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
