"""Handlers that the end-to-end tests plug into a real jobd through its config."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio

from provena_jobd.workers.handlers import JobContext


async def _wait_for_file(path: str, within_s: float = 20.0) -> None:
    """Wait (briefly polling) until the test creates `path`: a signal across processes."""
    for _ in range(int(within_s / 0.01)):
        if await anyio.Path(path).exists():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError(f"{path} never appeared")


async def launch_then_fail(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Launch two children, then fail: neither child may exist afterwards."""
    for _ in range(2):
        await context.launch("EMAIL", "EMAIL_WAKE_UP", {})
    raise RuntimeError("failed after launching children")


async def progress_then_wait(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Report progress, launch a child, then wait for the test's go-ahead."""
    await context.progress("Halfway through the records", 0.5)
    await context.launch("EMAIL", "EMAIL_WAKE_UP", {})
    await _wait_for_file(payload["go"])
    return {"done": True}
