"""Request decoding with the reference's (FastAPI / pydantic v1) 422 error shape."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from .. import coercion
from ..coercion import Problem, problem
from ..errors import RequestInvalid, UnsupportedMediaType

T = TypeVar("T")


def missing(where: str, name: str | None = None) -> RequestInvalid:
    """A required query parameter or body is absent."""
    loc: list[str | int] = [where] if name is None else [where, name]
    return RequestInvalid([problem(loc, "field required", "value_error.missing")])


async def decode_body(
    request: web.Request, model: type[T], more: Callable[[Any], list[Problem]] | None = None
) -> T:
    """Decode a JSON body into `model`, coercing as the reference's pydantic v1 models do, or
    raise a 422 that lists every problem and where it is.

    `more` finds the problems the route's own rules see in the decoded JSON (an unknown job
    type): a body the model refuses is answered with those too, all in the fields' order."""
    body = await request.read()
    if not body.strip():
        raise missing("body")
    _check_content_type(request)
    try:
        return msgspec.json.decode(body, type=model)  # exact types: the fast path
    except msgspec.ValidationError:
        pass  # perhaps only lenient: "limit": "5", "request_batch_id": "true", ...
    except (msgspec.DecodeError, RecursionError) as exc:
        raise _not_json(exc, body) from None
    try:
        value = msgspec.json.decode(body)
    except (msgspec.DecodeError, RecursionError) as exc:
        raise _not_json(exc, body) from None
    try:
        return coercion.convert(value, model, ["body"])
    except coercion.Invalid as exc:
        problems = exc.problems
        if more is not None:
            problems = _in_field_order(model, [*problems, *more(value)])
        raise RequestInvalid(problems) from None


def _in_field_order(model: type[Any], problems: list[Problem]) -> list[Problem]:
    """The problems ordered by the body field each is about, as pydantic v1 lists them."""
    if not issubclass(model, msgspec.Struct):
        return problems
    order = {field.encode_name: i for i, field in enumerate(msgspec.structs.fields(model))}

    def position(entry: Problem) -> int:
        loc = entry["loc"]
        return order.get(loc[1], len(order)) if len(loc) > 1 else -1

    return sorted(problems, key=position)


# A \uD800-\uDBFF escape (after an even run of backslashes, so a real escape, not an escaped
# backslash and "u...") followed by something other than another escape: a lone high
# surrogate. msgspec reports it as "Input data was truncated", as if the body ended there.
_LONE_HIGH_SURROGATE = re.compile(
    rb"(?<!\\)(?:\\\\)*(\\u[dD][89abAB][0-9a-fA-F]{2})(?=[^\\]|\\[^u])"
)


def _not_json(exc: Exception, body: bytes) -> RequestInvalid:
    """The 422 for a body that is not JSON, or nests deeper than the decoder goes."""
    reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
    if reason == "Input data was truncated":
        lone = _LONE_HIGH_SURROGATE.search(body)
        if lone is not None:
            escape = lone.group(1).decode()
            reason = (
                f"invalid escape {escape} (byte {lone.start(1)}): a UTF-16 high surrogate "
                "must be followed by a low surrogate escape (\\udc00 to \\udfff)"
            )
    elif reason == "Invalid UTF-8 encoded string":
        try:
            body.decode()
        except UnicodeDecodeError as bad:  # msgspec does not say where
            reason = f"the body is not valid UTF-8 (byte {bad.start})"
    return RequestInvalid([problem(["body"], f"Invalid JSON: {reason}", "value_error.jsondecode")])


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
