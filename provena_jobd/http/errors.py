"""Every error leaves jobd as `{"detail": ...}`, the shape the reference's clients parse."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
from aiohttp import web
from aiohttp.http_exceptions import PayloadEncodingError
from aiohttp.web_protocol import RequestPayloadError

from ..errors import ApiError, NotAuthorised, StorageError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# Every 401 names the scheme it wants: the reference's authentication failures do, and jobd's
# "not yours" refusals do too, so a client can treat every 401 alike.
CHALLENGE = {"WWW-Authenticate": "Bearer"}
# nginx's "client closed request": the client hung up before jobd could answer. The answer is
# never sent; the status is what /metrics counts it under, so a hang-up is not a 500.
CLIENT_CLOSED = 499


def json_response(body: Any, status: int = 200) -> web.Response:
    """A JSON response encoded with msgspec."""
    return web.Response(
        body=msgspec.json.encode(body), status=status, content_type="application/json"
    )


def error_response(status: int, detail: Any, headers: dict[str, str] | None = None) -> web.Response:
    """The canonical error body."""
    response = json_response({"detail": detail}, status)
    if headers:
        response.headers.update(headers)
    return response


def _body_cut_off(request: web.Request, exc: Exception) -> bool:
    """Did `exc` come from reading a request body whose client hung up while sending it?

    When the connection ends, aiohttp stores one exception on the body's stream and raises
    that very object from every read of it (`request.read()`, `.json()`, `.content`): a
    ConnectionResetError, "Connection lost" for a close, errno 104 for a reset. Only that
    object is the client's doing; a ConnectionResetError raised by anything else (the
    database's socket, SMTP's) is jobd's failure and stays a 500.
    """
    return exc is request.content.exception()


def client_closed() -> web.Response:
    """The answer to a client that left before it was answered: never sent (the connection is
    closed), but what /metrics counts the request under, `499`."""
    response = error_response(CLIENT_CLOSED, "The client closed the connection.")
    response.force_close()
    return response


def body_too_large(limit: int) -> web.Response:
    """The 413 for a body over `max_body_bytes` (declared up front, or found while reading)."""
    response = error_response(413, f"Request body too large: the limit is {limit} bytes.")
    # The rest of the body is not read: aiohttp drains it briefly, then closes the connection.
    response.force_close()
    return response


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map jobd's exceptions and aiohttp's own HTTP errors to `{"detail": ...}` bodies."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.detail)
    except NotAuthorised as exc:
        return error_response(401, str(exc), CHALLENGE)
    except web.HTTPRequestEntityTooLarge:
        return body_too_large(request.client_max_size)
    except StorageError as exc:
        # The database cannot take the write now (a full disk, most often): nothing was
        # stored or acknowledged, and the client may retry later.
        log.warning("storage unavailable: %s", exc, extra={"action": "http_503"})
        return error_response(
            503,
            f"jobd cannot store this now: {str(exc).removeprefix('write failed: ')}. "
            "Nothing was changed; try again later.",
            {"Retry-After": "30"},
        )
    except (PayloadEncodingError, RequestPayloadError) as exc:
        # aiohttp inflates the body as it is read; a body that is not what its
        # Content-Encoding says (or that breaks off) is the client's error.
        encoding = request.headers.get("Content-Encoding", "").strip().lower()
        if encoding:
            detail = (
                f"The request body is not valid {encoding}, as its Content-Encoding says: "
                "send it encoded that way, or without Content-Encoding."
            )
        else:
            detail = f"The request body could not be read: {exc}."
        response = error_response(400, detail)
        # The rest of the body cannot be read either: close the connection after answering
        # rather than let aiohttp try to drain it.
        response.force_close()
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(exc.status, exc.reason, allow)
    except Exception as exc:
        if _body_cut_off(request, exc):
            # Every handler reads its body before it acts, so nothing was done; the answer
            # has nobody to go to, but its status is what /metrics counts.
            log.info(
                "client closed the connection while sending its request (%s %s)",
                request.method,
                request.path,
                extra={"action": "http_499", "path": request.path},
            )
            return client_closed()
        log.exception("unexpected error", extra={"action": "http_500", "path": request.path})
        return error_response(500, f"Unexpected internal error occurred: {exc}")
