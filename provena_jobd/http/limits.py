"""How large a request's URL, headers and declared body may be, and jobd's JSON answer past each.

aiohttp's HTTP parser refuses a URL or a header over 8190 bytes itself, with a plain-text
400 that no middleware sees. jobd raises the parser's limits (`PARSER_*`, given to the
AppRunner) and enforces its own, lower ones here, so a request past them gets the documented
`{"detail": ...}` with the status that says what is wrong: 414 for the URL, 431 for a header
or all of them, 413 for a declared body over `max_body_bytes`. Only a request past the
parser's raised limits still gets aiohttp's plain-text 400 (README, "Request limits").
"""

from __future__ import annotations

from typing import TypedDict

from aiohttp import web

from .errors import Handler, body_too_large, error_response

MAX_URL_BYTES = 8190  # the request target (path and query), aiohttp's own default limit
MAX_HEADER_BYTES = 8190  # one header's name and value, aiohttp's own default limit
MAX_HEADERS_BYTES = 32768  # all the headers' names and values together (nginx's is ~32 KiB)
MAX_HEADERS = 128  # header fields per request: aiohttp's parser counts, and refuses past it

# What aiohttp's parser accepts before it answers a plain-text 400 itself (its max_line_size,
# for the URL, and max_field_size): above jobd's limits, so jobd answers first. A header is
# buffered up to max_field_size, times MAX_HEADERS fields: 16 KiB keeps that at 2 MiB a
# request (aiohttp's defaults allow 1 MiB).
PARSER_MAX_URL_BYTES = 65536
PARSER_MAX_HEADER_BYTES = 16384


class ParserLimits(TypedDict):
    """aiohttp's parser limits, as its AppRunner takes them."""

    max_line_size: int
    max_field_size: int
    max_headers: int


# What every jobd listener runs with: `jobd serve` and the fixtures (`running`), and the
# tests' aiohttp TestServer (tests/helpers.py), so the tests see what users run.
PARSER_LIMITS = ParserLimits(
    max_line_size=PARSER_MAX_URL_BYTES,
    max_field_size=PARSER_MAX_HEADER_BYTES,
    max_headers=MAX_HEADERS,
)

_SHOWN_NAME = 64  # a header named in a 431 is cut to this many characters


def refusal(request: web.Request) -> web.Response | None:
    """The 414, 431 or 413 for a request past jobd's limits; None for one within them."""
    path = request.raw_path
    # Every request passes here: only a path that might be over is encoded (UTF-8 takes at
    # most 4 bytes a character).
    if len(path) * 4 > MAX_URL_BYTES:
        url_bytes = len(path.encode("utf-8", "surrogateescape"))
        if url_bytes > MAX_URL_BYTES:
            return error_response(
                414,
                f"Request URL too long: the limit is {MAX_URL_BYTES} bytes (path and query); "
                f"this one is {url_bytes}. Send long values in the request body.",
            )
    total = 0
    for name, value in request.raw_headers:
        size = len(name) + len(value)
        if size > MAX_HEADER_BYTES:
            shown = name.decode("latin-1")[:_SHOWN_NAME]  # the name only: a value may be secret
            return error_response(
                431,
                f"Request header {shown!r} too large: the limit is {MAX_HEADER_BYTES} bytes "
                f"for one header (name and value); this one is {size}.",
            )
        total += size
    if total > MAX_HEADERS_BYTES:
        return error_response(
            431,
            f"Request headers too large: the limit is {MAX_HEADERS_BYTES} bytes for all "
            f"headers together (names and values); these are {total}.",
        )
    declared = request.content_length
    if declared is not None and declared > request.client_max_size:
        # Refused before reading a byte of it (a chunked body is refused as it is read).
        return body_too_large(request.client_max_size)
    return None


@web.middleware
async def limits_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse a request past jobd's size limits before anything else reads it."""
    return refusal(request) or await handler(request)
