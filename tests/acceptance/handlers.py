"""A handler the acceptance tests plug into a real jobd through its config (`[jobs.HOLD]`)."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio

from provena_jobd.workers.handlers import JobContext

HOLD_CONFIG = """
[jobs.HOLD]
job_type = "EMAIL"
handler = "python"
callable = "tests.acceptance.handlers:hold"
"""


async def hold(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Note this run in `payload["runs"]`, then wait (bounded) for the file `payload["go"]`."""
    async with await anyio.open_file(payload["runs"], "a") as runs:
        await runs.write(f"{context.session_id} attempt {context.attempt}\n")
    go = anyio.Path(payload["go"])
    for _ in range(2000):  # 20 s at most
        if await go.exists():
            return {"held": True}
        await asyncio.sleep(0.01)
    raise TimeoutError(f"{go} never appeared")
