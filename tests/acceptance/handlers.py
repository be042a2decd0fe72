"""A handler the acceptance tests plug into a real jobd through its config (`[jobs.HOLD]`)."""

from __future__ import annotations

import asyncio
import os
import sys
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


# Wake-up jobs that take a moment, as real work does: a burst is still running when a test
# stops jobd, however fast jobd has become.
BRIEF_WAKE_UP_CONFIG = """
[pool]
concurrency = 1
max_workers = 1

[jobs.EMAIL_WAKE_UP]
handler = "python"
callable = "tests.acceptance.handlers:brief"
"""


async def brief(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Take 10 ms, then succeed with the wake-up's empty result."""
    await asyncio.sleep(0.01)
    return {}


MISBEHAVING_CONFIG = """
[jobs.EXIT]
job_type = "EMAIL"
handler = "python"
callable = "tests.acceptance.handlers:exit_jobd"

[jobs.INTERRUPT]
job_type = "EMAIL"
handler = "python"
callable = "tests.acceptance.handlers:interrupt"

[jobs.EXIT_LATER]
job_type = "EMAIL"
handler = "python"
callable = "tests.acceptance.handlers:exit_from_a_callback"

[jobs.CRASH]
job_type = "EMAIL"
handler = "python"
callable = "tests.acceptance.handlers:crash"
"""


async def exit_jobd(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Call sys.exit(), as a script turned into a handler might."""
    sys.exit(payload.get("code", 1))


async def interrupt(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Raise KeyboardInterrupt from inside a handler."""
    raise KeyboardInterrupt


async def exit_from_a_callback(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Raise SystemExit from a loop callback, outside the handler's task: jobd cannot catch it."""
    asyncio.get_running_loop().call_soon(sys.exit, 4)
    await asyncio.Event().wait()  # never set: jobd exits from the callback first
    return {}


async def crash(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Kill the whole process, as a segfaulting extension or os._exit would."""
    os._exit(70)


TALLY_CONFIG = """
[jobs.TALLY]
job_type = "EMAIL"
handler = "python"
callable = "tests.acceptance.handlers:tally"
"""


def _tally(folder: str, step: int, line: str) -> int:
    """Under a lock shared by every jobd process: add `step` to the running count, note
    `line`, and return the count."""
    import fcntl
    from pathlib import Path

    base = Path(folder)
    with (base / "lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        counter = base / "running"
        running = int(counter.read_text() or 0) if counter.exists() else 0
        running += step
        counter.write_text(str(running))
        with (base / "log").open("a") as log:
            log.write(line.format(running=running) + "\n")
        return running


async def tally(context: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    """Record each run and how many TALLY jobs run at once on all nodes (`payload["dir"]`)."""
    folder = payload["dir"]
    await anyio.to_thread.run_sync(_tally, folder, 1, "start {running} " + context.session_id)
    await asyncio.sleep(payload.get("hold_s", 0.02))
    await anyio.to_thread.run_sync(_tally, folder, -1, "end {running} " + context.session_id)
    return {"pid": os.getpid()}
