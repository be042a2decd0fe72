"""`jobd jobs list | show | watch`: the jobs themselves."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import click

from ..clock import SystemClock
from ..errors import JobdError
from ..models import MAX_SEARCH, TERMINAL_STATUSES, JobStatus
from .common import (
    WATCH_RECHECK_S,
    admin_hinted,
    admin_option,
    client_command,
    finished_status,
    found_by_whole_id,
)
from .output import CLOCK_FORMAT, fetched_json, list_table, print_json, show, show_job, when

if TYPE_CHECKING:
    from ..client import JobdClient
    from ..models import Job


@click.group()
def jobs() -> None:
    """List, show and watch jobs."""


_STATUSES = ", ".join(status.value for status in JobStatus)


def _read_status(
    context: click.Context, parameter: click.Parameter, value: str | None
) -> JobStatus | None:
    """`--status`: one of jobd's statuses, in either case (jobd lists by one at a time)."""
    if value is None:
        return None
    try:
        return JobStatus(value.upper())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a status; use one of {_STATUSES}") from None


def _check_search(
    context: click.Context, parameter: click.Parameter, value: str | None
) -> str | None:
    """`--search`: some text, no longer than jobd searches for (it refuses a longer one)."""
    if value is None:
        return None
    if not value:
        raise click.BadParameter("give some text to search for (jobd ignores an empty search)")
    if len(value) > MAX_SEARCH:
        raise click.BadParameter(f"at most {MAX_SEARCH} characters, not {len(value)}")
    return value


@jobs.command("list")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    metavar="N",
    default=20,
    show_default=True,
    help="Show at most this many jobs, newest first (0: all of them).",
)
@click.option("--batch", "batch_id", metavar="ID", help="Only the jobs of this batch.")
@click.option("--user", help="Only this user's jobs (admin route).")
@click.option(
    "--status",
    metavar="STATUS",
    callback=_read_status,
    help=f"Only the jobs in STATUS: {_STATUSES} (either case).",
)
@click.option(
    "--search",
    metavar="TEXT",
    callback=_check_search,
    help="Only the jobs whose session id, batch id, username, sub type, info or payload "
    "contains TEXT (ASCII letters in either case). Ids launched in the same minute share "
    "their first characters: search for the last ones.",
)
@admin_option
@client_command
async def jobs_list(
    client: JobdClient,
    limit: int,
    batch_id: str | None,
    user: str | None,
    status: JobStatus | None,
    search: str | None,
    admin: bool,
    as_json: bool,
) -> int:
    """List your jobs (or a batch's), newest first; --status and --search narrow them."""
    most = limit or None
    page_size = min(limit or 1000, 1000)
    found = (
        client.list_batch(
            batch_id, admin=admin, username=user, page_size=page_size, limit=most,
            status=status, search=search,
        )
        if batch_id is not None
        else client.list_jobs(
            admin=admin, username=user, page_size=page_size, limit=most,
            status=status, search=search,
        )
    )  # fmt: skip
    show([job async for job in found], as_json, list_table)
    return 0


@jobs.command("show")
@click.argument("session_id")
@admin_option
@client_command
async def jobs_show(client: JobdClient, session_id: str, admin: bool, as_json: bool) -> int:
    """Show one job, every field (`-` for one not set), and why it waits if it has not started.

    With --json, the job's fields on one line, and its `waiting` while it waits.
    """
    async with admin_hinted(client, "jobs show", session_id, admin):
        with found_by_whole_id(session_id, admin):
            answer = await client.fetch_response(session_id, admin=admin)
    if as_json:
        print_json(fetched_json(answer))
    else:
        show_job(answer.job, answer.waiting)
    return 0


@jobs.command("watch")
@click.argument("session_id")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Give up (exit 1) after this many seconds [watch as long as it takes].",
)
@admin_option
@client_command
async def jobs_watch(
    client: JobdClient,
    session_id: str,
    timeout_s: float | None,
    admin: bool,
    as_json: bool,
) -> int:
    """Print a job's status as it changes until it finishes; exit 1 if it FAILED.

    With --json, one JSON job per line (each change).
    """

    def show_change(job: Job) -> None:
        if as_json:
            print_json(job)
            return
        progress = "" if job.progress is None else f"  {job.progress:.0%}"
        # A finished job shows when it finished, not when we looked.
        finished = job.finished_timestamp if job.status in TERMINAL_STATUSES else None
        seen = SystemClock().now() if finished is None else finished
        stamp = when(seen, CLOCK_FORMAT)
        click.echo(f"{stamp}  {job.status.value}{progress}  {job.info or ''}".rstrip())

    try:
        async with asyncio.timeout(timeout_s), client.events() as events:
            async with admin_hinted(client, "jobs watch", session_id, admin):
                with found_by_whole_id(session_id, admin):
                    job = await client.fetch(session_id, admin=admin)
            show_change(job)
            while job.status not in TERMINAL_STATUSES:
                try:
                    changed = await asyncio.wait_for(anext(events, None), WATCH_RECHECK_S)
                except TimeoutError:  # no event for a while: check (one may have been lost)
                    changed = await client.fetch(session_id, admin=admin)
                if changed is None:
                    raise JobdError("jobd closed the event stream before the job finished")
                if changed.session_id != session_id or _older(changed, job):
                    continue
                if _shown(changed) != _shown(job):
                    show_change(changed)
                job = changed
    except TimeoutError:
        raise JobdError(f"job {session_id} did not finish within {timeout_s:g} s") from None
    return finished_status(job)


_ORDER = [status.value for status in JobStatus]


def _older(changed: Job, current: Job) -> bool:
    """An event that shows an earlier state than the one already shown (read before it)."""
    return (changed.attempt, _ORDER.index(changed.status)) < (
        current.attempt,
        _ORDER.index(current.status),
    )


def _shown(job: Job) -> tuple[Any, ...]:
    """What `jobs watch` prints of a job: a line only when one of these changes."""
    return (job.status, job.info, job.progress, job.attempt)
