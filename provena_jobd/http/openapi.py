"""`/openapi.json`, generated from the route table (`routes.ROUTES`) and its wire models.

It lists the reference's public routes plus jobd's own, and the `/retry` routes, which the
reference hides only while they are stubs ("remove this annotation once destubbed"); every
operation documents its success model and the `{"detail": ...}` errors.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec
from aiohttp import web

from ..launch_options import KEY_HEADER, MAX_KEY_LENGTH, REPLAYED_HEADER
from ..models import (
    MAX_WAIT_S,
    ErrorResponse,
)
from .auth import Access
from .limits import MAX_HEADER_BYTES, MAX_HEADERS_BYTES, MAX_URL_BYTES
from .routes import ROUTES

_ERRORS = {
    "400": "Not found (`Item was not found.`) or a request the rules refuse",
    "401": "Not authenticated, or not authorised",
    "409": "A worker's attempt no longer holds the job (worker protocol), or an "
    "Idempotency-Key was already used for a different launch",
    "413": "Request body too large: over `max_body_bytes` (1 MiB by default)",
    "414": f"Request URL too long: over {MAX_URL_BYTES} bytes (path and query)",
    "415": "The body is not JSON",
    "422": "The request does not validate",
    "431": f"Request headers too large: one over {MAX_HEADER_BYTES} bytes (name and value), "
    f"or all together over {MAX_HEADERS_BYTES}",
}


_WAIT_S = {
    "name": "wait_s",
    "in": "query",
    "required": False,
    "description": "Wait up to this many seconds for the job to finish before answering.",
    "schema": {"type": "number", "minimum": 0, "maximum": MAX_WAIT_S},
}


# What service.launch and launch_options do with the key (README "Idempotent launch").
_IDEMPOTENCY_KEY = {
    "name": KEY_HEADER,
    "in": "header",
    "required": False,
    "description": "Launch at most once per key. Keys are per user: the user the job is "
    "launched for (`username`, else the caller). A repeat with the same key and the same "
    "request answers 200 with the first launch's `session_id` and `batch_id`, and the header "
    "`Idempotent-Replayed: true`, and launches nothing, also after a restart or on another "
    "node. The same key with a different request "
    "(another payload, type, batch option or delay) is a 409 naming the job the key launched, "
    "and launches nothing. A key is kept for `[queue] idempotency_ttl_s` (a day by default); "
    "after that it launches a new job. The body's `idempotency_key` is the same key: if both "
    "are given they must be equal. 1 to 255 printable characters; else 422.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
}


_REPLAYED = {
    "description": "`true` when the launch repeated an earlier one with the same "
    "Idempotency-Key: the body names the job that one launched, and nothing was launched now. "
    "Absent otherwise.",
    "schema": {"type": "string", "enum": ["true"]},
}


def _ref(model: type) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


@cache
def openapi_document() -> bytes:
    """The OpenAPI 3.1 document, built once."""
    models: set[type] = {ErrorResponse}
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        if not route.listed:
            continue
        method, path, body, success = route.method, route.path, route.body, route.response
        assert success is not None, f"{path} is listed without its response"
        responses: dict[str, Any] = {
            code: {"description": text, "content": _json(_ref(ErrorResponse))}
            for code, text in _ERRORS.items()
        }
        if isinstance(success, str):
            responses["200"] = {
                "description": success,
                "content": {success: {"schema": {"type": "string"}}},
            }
        else:
            models.add(success)
            responses["200"] = {"description": "OK", "content": _json(_ref(success))}
        operation: dict[str, Any] = {"summary": route.summary, "responses": responses}
        parameters = [
            {"name": name, "in": "query", "required": True, "schema": {"type": "string"}}
            for name in route.query
        ]
        if route.waits:
            parameters.append(_WAIT_S)
        if route.idempotent:
            parameters.append(_IDEMPOTENCY_KEY)
            responses["200"]["headers"] = {REPLAYED_HEADER: _REPLAYED}
        if parameters:
            operation["parameters"] = parameters
        if body is not None:
            models.add(body)
            operation["requestBody"] = {"required": True, "content": _json(_ref(body))}
        if route.access is not Access.PUBLIC:
            operation["security"] = [{"bearer": []}]
        paths.setdefault(path, {})[method.lower()] = operation
    _, schemas = msgspec.json.schema_components(
        sorted(models, key=lambda m: m.__name__), ref_template="#/components/schemas/{name}"
    )
    document = {
        "openapi": "3.1.0",
        "info": {"title": "provena-jobd Job API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
    return msgspec.json.encode(document)


async def openapi_json(request: web.Request) -> web.Response:
    """`GET /openapi.json`."""
    return web.Response(body=openapi_document(), content_type="application/json")
