"""A handler the client tests plug into jobd, held at a gate the test opens."""

from __future__ import annotations

import asyncio
from typing import Any

from provena_jobd.errors import JobFailed
from provena_jobd.workers.handlers import JobContext

# Gates by name, created by a test (in its event loop, which is also the server's).
GATES: dict[str, asyncio.Event] = {}

# The sub type the tests declare, as a `[jobs.STEP]` table of jobd.toml.
STEP = "STEP"
JOB_TYPE = "TESTING"
JOBS = {STEP: {"job_type": JOB_TYPE, "handler": "python", "callable": f"{__name__}:step"}}


def gate(name: str) -> asyncio.Event:
    """A new closed gate that STEP jobs with `{"gate": name}` wait at."""
    GATES[name] = asyncio.Event()
    return GATES[name]


async def step(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Wait at the payload's gate (if any), report progress, then fail or echo."""
    if "gate" in payload:
        await context.progress("Waiting at the gate", 0.5)
        await GATES[payload["gate"]].wait()
    if "fail" in payload:
        raise JobFailed(payload["fail"])
    return {"echo": payload.get("echo")}
