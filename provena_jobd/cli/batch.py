"""`jobd batch show ID`: a batch's progress as a bar until every job in it has finished."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import TYPE_CHECKING

import click

from .common import WATCH_RECHECK_S, admin_option, client_command
from .output import print_json, progress_line

if TYPE_CHECKING:
    from ..client import EventStream, JobdClient
    from ..models import BatchSummary

REDRAW_PAUSE_S = 0.1  # at most ten redraws a second


@click.group()
def batch() -> None:
    """Follow batches of jobs."""


@batch.command("show")
@click.argument("batch_id")
@click.option("--no-wait", is_flag=True, help="Show the counts now instead of following the batch.")
@admin_option
@client_command
async def batch_show(
    client: JobdClient, batch_id: str, no_wait: bool, admin: bool, as_json: bool
) -> int:
    """Show a batch's progress as a bar until all its jobs have finished.

    Exit 1 if any of them FAILED or there is no such batch. On a terminal the bar redraws in
    place; otherwise a line is printed whenever the counts change. With --json, the final
    counts as one JSON object.
    """
    redraw = sys.stdout.isatty() and not as_json
    last = [""]

    def draw(summary: BatchSummary) -> None:
        line = progress_line(summary)
        if as_json or line == last[0]:
            return
        last[0] = line
        if redraw:
            click.echo("\r" + line + "\x1b[K", nl=False)
        else:
            click.echo(line)

    async with client.events() as events:
        summary = await client.batch_summary(batch_id, admin=admin)
        draw(summary)
        if not no_wait:
            changed = asyncio.Event()
            follower = asyncio.create_task(_batch_changes(events, batch_id, changed))
            try:
                while not summary.done:
                    # A change in the batch wakes us; the timeout covers a lost event.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(changed.wait(), WATCH_RECHECK_S)
                    changed.clear()
                    summary = await client.batch_summary(batch_id, admin=admin)
                    draw(summary)
                    await asyncio.sleep(REDRAW_PAUSE_S)
            finally:
                follower.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await follower
    if redraw:
        click.echo("")
    if as_json:
        print_json(summary)
    if no_wait:
        return 0
    return 0 if summary.all_succeeded else 1


async def _batch_changes(events: EventStream, batch_id: str, changed: asyncio.Event) -> None:
    """Set `changed` whenever a job of the batch changes."""
    async for job in events:
        if job.batch_id == batch_id:
            changed.set()
