"""The launch extensions of issue 14, as pure functions: idempotency keys and delays.

An existing Provena client sends none of these, and its launches behave as before. The
words jobd refuses a launch with live here too where `jobd launch` says them its own way.
"""

from __future__ import annotations

import datetime
import hashlib
import math

import msgspec

from .errors import Conflict, RequestInvalid
from .models import LaunchJobRequest

MAX_KEY_LENGTH = 255
KEY_HEADER = "Idempotency-Key"
# The response header that marks a launch answered from an earlier one with the same key
# (the name Stripe's API uses for the same thing).
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_RULE = f"must be 1 to {MAX_KEY_LENGTH} printable characters"
DELAY_RULE = "must be a number of seconds, 0 or more"
KEY_REUSED = (
    "Idempotency-Key {key!r} was already used for a different launch request (job "
    "{session_id}); use a new key for a new request."
)
# `add_to_batch` naming no batch (400); `jobd launch` says `--batch` instead of the field.
NO_SUCH_BATCH = "add_to_batch names no existing batch: {batch_id}."
DELAYED_INFO = "Scheduled: waits until {when} UTC before it runs."


def _problem(field: str, message: str, where: str = "body") -> RequestInvalid:
    return RequestInvalid([{"loc": [where, field], "msg": message, "type": "value_error"}])


def is_valid_key(key: str) -> bool:
    """Whether `key` may be an idempotency key (`KEY_RULE`); `jobd launch` checks it too."""
    return 0 < len(key) <= MAX_KEY_LENGTH and key.isprintable()


def idempotency_key(request: LaunchJobRequest, header: str | None) -> str | None:
    """The launch's key, from the header or the body; both must agree if both are given."""
    body = request.idempotency_key
    if header is not None and body is not None and header != body:
        raise _problem(
            "idempotency_key", "differs from the Idempotency-Key header; send one or the other"
        )
    # The problem's loc says where the bad key came from: the header or the body's field.
    if header is not None and not is_valid_key(header):
        raise _problem(KEY_HEADER, KEY_RULE, where="header")
    if body is not None and not is_valid_key(body):
        raise _problem("idempotency_key", KEY_RULE)
    return header if header is not None else body


def fingerprint(request: LaunchJobRequest, username: str) -> str:
    """A digest of what the request asks for (not its key): equal requests, equal digests."""
    asked = msgspec.structs.replace(request, idempotency_key=None, username=username)
    encoded = msgspec.json.encode(msgspec.to_builtins(asked), order="sorted")
    return hashlib.sha256(encoded).hexdigest()


def check_replay(key: str, expected: str, found: str | None, session_id: str) -> None:
    """A key seen before must come with the same request: else 409."""
    if found != expected:
        raise Conflict(KEY_REUSED.format(key=key, session_id=session_id))


def run_after(request: LaunchJobRequest, now: float, max_delay_s: float) -> float:
    """When the job may run: `now`, or later if the request asks for a delay."""
    if request.not_before is not None and request.delay_s is not None:
        raise _problem("delay_s", "give not_before or delay_s, not both")
    if request.delay_s is not None:
        if not math.isfinite(request.delay_s) or request.delay_s < 0:
            raise _problem("delay_s", DELAY_RULE)
        at = now + request.delay_s
    elif request.not_before is not None:
        if not math.isfinite(request.not_before):
            raise _problem("not_before", "must be a Unix time in seconds")
        at = max(now, request.not_before)  # a time already past means: now
    else:
        return now
    if at - now > max_delay_s:
        field = "delay_s" if request.delay_s is not None else "not_before"
        days = max_delay_s / 86_400
        limit = f"{max_delay_s:.0f} seconds" + (f" ({days:.4g} days)" if days >= 1 else "")
        raise _problem(field, f"a launch may wait at most {limit}")
    return at


def delayed_info(now: float, at: float) -> str | None:
    """The info a delayed job waits with, or None if it may run now."""
    if at <= now:
        return None
    return scheduled_info(at)


def utc_time(at: float) -> str:
    """An epoch timestamp as `YYYY-MM-DD HH:MM:SS` in UTC (without the zone's name)."""
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def scheduled_info(at: float) -> str:
    """The words for a job launched to wait until `at` (its info, and its `waiting` message)."""
    return DELAYED_INFO.format(when=utc_time(at))
