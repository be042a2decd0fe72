"""Pagination keys on the wire, in the reference's shapes.

The reference hands out DynamoDB's `LastEvaluatedKey` as plain JSON, e.g.
`{"session_id": ..., "username": ..., "created_timestamp": ...}`. jobd issues and accepts the
same shapes, so keys from either server round-trip, and checks them against the stored job
(the store raises InvalidPosition), so a tampered or foreign key is a 400, never a 500.

A filtered list (jobd's optional filters) adds the filters to its keys as `filters`, and a
key is accepted only by a list with exactly those filters: a position in one filtered list
means nothing in another, and keys of unfiltered lists keep the reference's shape.
"""

from __future__ import annotations

from typing import Any

from .errors import BadRequest
from .models import GSI_STATUS, Job
from .queue.store import ListScope, Position

INVALID_KEY = "Invalid pagination_key: it does not come from this list. Start again without one."


def scope_field(scope: ListScope) -> str:
    """The field that names a list's partition in its key."""
    if scope.batch_id is not None:
        return "batch_id"
    if scope.username is not None:
        return "username"
    return "gsi_status"


def key_for(scope: ListScope, last: Job) -> dict[str, Any]:
    """The key that continues a list after `last`."""
    field = scope_field(scope)
    value = {"batch_id": last.batch_id, "username": last.username, "gsi_status": GSI_STATUS}
    key: dict[str, Any] = {
        "session_id": last.session_id,
        field: value[field],
        "created_timestamp": last.created_timestamp,
    }
    filters = scope.filters()
    if filters:
        key["filters"] = filters
    return key


def position_of(scope: ListScope, key: dict[str, Any] | None) -> Position | None:
    """Check a key's shape against the list it is used with; its position in that list."""
    if key is None:
        return None
    field = scope_field(scope)
    expected = {"batch_id": scope.batch_id, "username": scope.username, "gsi_status": GSI_STATUS}
    session_id = key.get("session_id")
    created = key.get("created_timestamp")
    filters = scope.filters()
    fields = {"session_id", field, "created_timestamp"} | ({"filters"} if filters else set())
    if (
        set(key) != fields
        or (filters and key["filters"] != filters)
        or not isinstance(session_id, str)
        or isinstance(created, bool)
        or not isinstance(created, int)
        or key[field] != expected[field]
    ):
        raise BadRequest(INVALID_KEY)
    return Position(session_id, created)
