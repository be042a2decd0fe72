"""How a `jobd.toml` value the settings structs refuse is said: the key as it is written in the
file, and what that key accepts.

msgspec says what it expected in its own type names (`Invalid enum value 'nonee'`, ``Expected
`bool`, got `str` ``); the hints added here come from the field's declared type, so every key
of a kind reads alike without a case per key.
"""

from __future__ import annotations

import json
import re
import types
import typing
from typing import Annotated, Any, Literal

import msgspec


def describe(exc: msgspec.ValidationError, kind: type[Any], where: str) -> str:
    """Say which key is wrong (`where` is the table `kind` was read from) and what it takes."""
    message, _, path = str(exc).partition(" - at `$")
    path = path.rstrip("`").lstrip(".")
    key = ".".join(part for part in (where, path) if part)
    unknown = re.match(r"Object contains unknown field `([^`]+)`", message)
    if unknown:
        table = f" in [{key}]" if key else ""
        return f"unknown key `{unknown.group(1)}`{table}"
    message += _hint(message, _leaves(_field_type(kind, path)), key)
    return f"{key}: {message}" if key else message


def _hint(message: str, leaves: list[Any], key: str) -> str:
    """What to write instead, for a key whose declared types are `leaves`."""
    literals = [
        value
        for leaf in leaves
        if typing.get_origin(leaf) is Literal
        for value in typing.get_args(leaf)
    ]
    numbers = any(leaf in (int, float) for leaf in leaves)
    if literals:
        quoted = re.fullmatch(r"Invalid enum value '(.*)'", message)
        if numbers and quoted and _is_number(quoted.group(1)):
            return " (write the number without quotes)"
        # The key takes names (and maybe a number): list them all, in their declared order.
        valid = [json.dumps(value) for value in literals]
        if numbers:
            valid.insert(0, "a number of seconds" if key.endswith("_s") else "a number")
        return f" (valid values: {', '.join(valid)})"
    if not message.endswith("got `str`"):
        return ""
    if numbers:
        return " (write the number without quotes)"
    if bool in leaves:
        return " (write true or false without quotes)"
    return ""


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _field_type(kind: Any, path: str) -> Any:
    """The declared type at `path` (`auth.mode`, `schedules[0].missed`) inside `kind`; Any when
    the path leaves the settings structs (a payload's own keys)."""
    for part in re.findall(r"\[[^\]]*\]|[^.\[]+", path):
        kind = _unwrapped(kind)
        if part.startswith("["):  # an item of a list, or a value of a table
            arguments = typing.get_args(kind)
            kind = arguments[-1] if arguments else Any
        elif isinstance(kind, type) and issubclass(kind, msgspec.Struct):
            kind = typing.get_type_hints(kind, include_extras=True).get(part, Any)
        else:
            return Any
    return kind


def _leaves(kind: Any) -> list[Any]:
    """The types a value of `kind` may have: `float | Literal["forever"]` is both."""
    kind = _unwrapped(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return [leaf for member in typing.get_args(kind) for leaf in _leaves(member)]
    return [kind]


def _unwrapped(kind: Any) -> Any:
    """`kind` without an `Annotated[...]` marker (a `Secret[...]` field is its inner type)."""
    return typing.get_args(kind)[0] if typing.get_origin(kind) is Annotated else kind
