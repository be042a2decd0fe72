"""Handlers: the async functions that do a job's work, registered per sub type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..clock import Clock
from ..models import WAKE_UP_SUB_TYPES, JobSubType, JobType


@dataclass(frozen=True)
class JobContext:
    """What a handler knows about the job it runs."""

    session_id: str
    username: str
    batch_id: str | None
    job_type: JobType
    job_sub_type: JobSubType
    attempt: int
    clock: Clock


Payload = dict[str, Any]
Result = dict[str, Any]
Handler = Callable[[Payload, JobContext], Awaitable[Result]]


async def wake_up(payload: Payload, context: JobContext) -> Result:
    """A `*_WAKE_UP` job: its only effect is a warm worker, so it succeeds with `{}`."""
    return {}


def builtin_handlers() -> dict[JobSubType, Handler]:
    """The handlers jobd ships with."""
    return dict.fromkeys(WAKE_UP_SUB_TYPES, wake_up)


class HandlerRegistry:
    """Which handler runs each sub type."""

    def __init__(self, handlers: Mapping[JobSubType, Handler] | None = None) -> None:
        self._handlers: dict[JobSubType, Handler] = builtin_handlers()
        self._handlers.update(handlers or {})

    def register(self, sub_type: JobSubType, handler: Handler) -> None:
        """Route a sub type to a handler, replacing any earlier one."""
        self._handlers[sub_type] = handler

    def get(self, sub_type: JobSubType) -> Handler | None:
        """The handler for a sub type, or None if it has none."""
        return self._handlers.get(sub_type)
