"""Request decoding with the reference's (FastAPI / pydantic v1) 422 error shape."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from ..errors import RequestInvalid, UnsupportedMediaType

T = TypeVar("T")

_AT = re.compile(r"^(?P<msg>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]")


def problem(loc: list[str | int], msg: str, kind: str, **ctx: Any) -> dict[str, Any]:
    """One entry of a 422 `detail` list."""
    entry: dict[str, Any] = {"loc": loc, "msg": msg, "type": kind}
    if ctx:
        entry["ctx"] = ctx
    return entry


def missing(where: str, name: str | None = None) -> RequestInvalid:
    """A required query parameter or body is absent."""
    loc: list[str | int] = [where] if name is None else [where, name]
    return RequestInvalid([problem(loc, "field required", "value_error.missing")])


def describe(error: msgspec.ValidationError) -> dict[str, Any]:
    """Turn a msgspec validation message into a pydantic-style problem."""
    match = _AT.match(str(error))
    assert match is not None  # the pattern matches any string
    msg, path = match.group("msg"), match.group("path") or "$"
    loc: list[str | int] = ["body"]
    for name, index in _PATH_PART.findall(path):
        loc.append(int(index) if index else name)
    if missing_field := _MISSING.match(msg):
        return problem(
            [*loc, missing_field.group("field")], "field required", "value_error.missing"
        )
    if msg.startswith("Object contains unknown field"):
        return problem(loc, msg, "value_error.extra")
    kind = "value_error" if msg.startswith("Expected `int` >=") or "<=" in msg else "type_error"
    return problem(loc, msg, kind)


async def decode_body(request: web.Request, model: type[T]) -> T:
    """Decode a JSON body into `model`, or raise a 422 that says what is wrong and where."""
    body = await request.read()
    if not body.strip():
        raise missing("body")
    _check_content_type(request)
    try:
        return msgspec.json.decode(body, type=model)
    except msgspec.ValidationError as exc:
        raise RequestInvalid([describe(exc)]) from None
    except msgspec.DecodeError as exc:
        raise RequestInvalid(
            [problem(["body"], f"Invalid JSON: {exc}", "value_error.jsondecode")]
        ) from None
    except RecursionError:
        raise RequestInvalid(
            [problem(["body"], "Invalid JSON: nested too deeply", "value_error.jsondecode")]
        ) from None


def _check_content_type(request: web.Request) -> None:
    """A body must be JSON; a request without a Content-Type is taken as JSON."""
    if "Content-Type" not in request.headers:
        return
    kind = request.content_type
    if kind != "application/json" and not kind.endswith("+json"):
        raise UnsupportedMediaType(
            f"Unsupported Content-Type {kind!r}: send the body as application/json."
        )


def query_param(request: web.Request, name: str) -> str:
    """A required query parameter, or a 422 naming it."""
    value = request.query.get(name)
    if value is None:
        raise missing("query", name)
    return value


def optional_float(request: web.Request, name: str, low: float, high: float) -> float:
    """An optional numeric query parameter within [low, high], or a 422 naming it."""
    raw = request.query.get(name)
    if raw is None:
        return low
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # also false for NaN
        raise RequestInvalid(
            [
                problem(
                    ["query", name],
                    f"ensure this value is a number from {low:g} to {high:g}",
                    "value_error.number",
                )
            ]
        )
    return value
