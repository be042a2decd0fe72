"""`jobd retry ID` and `jobd cancel ID`: act on one job."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..models import JobStatus
from .common import admin_option, client_command, found_by_whole_id, wait_and_show, with_wait
from .output import job_json, print_json

if TYPE_CHECKING:
    from ..client import JobdClient
    from ..models import Job


@click.command()
@click.argument("session_id")
@admin_option
@with_wait
@client_command
async def retry(
    client: JobdClient,
    session_id: str,
    admin: bool,
    wait: bool,
    timeout_s: float | None,
    as_json: bool,
) -> int:
    """Relaunch a FAILED job as a new job; print the new session id."""
    with found_by_whole_id(session_id, admin):
        retried = await client.retry(session_id, admin=admin)
    if wait:
        return await wait_and_show(client, "retried as", retried.session_id, timeout_s, as_json)
    if as_json:
        print_json(retried)
    else:
        click.echo(retried.session_id)
    return 0


@click.command()
@click.argument("session_id")
@admin_option
@client_command
async def cancel(client: JobdClient, session_id: str, admin: bool, as_json: bool) -> int:
    """Cancel a job: a waiting one ends FAILED now, a running one is asked to stop.

    Prints the job's id and status and what the cancel did: `cancelled` (the job has ended
    FAILED) or `cancel requested` (it is running: it ends FAILED once its handler stops;
    `jobd jobs watch ID` follows it). With --json, the job's fields and `cancel`, "ended" or
    "requested" ("finished" if it had already succeeded).
    """
    with found_by_whole_id(session_id, admin):
        job = await client.cancel(session_id, admin=admin)
    outcome, words = _cancel_outcome(job)
    if as_json:
        print_json({**job_json(job), "cancel": outcome})
    else:
        click.echo(f"{job.session_id}  {job.status.value}  {words}")
    return 0


def _cancel_outcome(job: Job) -> tuple[str, str]:
    """What a cancel did to `job`, as jobd answered it: the word `--json` gives, and the
    words the table gives."""
    if job.status is JobStatus.FAILED:
        return "ended", "cancelled: the job has ended FAILED"
    if job.status is JobStatus.SUCCEEDED:  # it finished between jobd's check and the cancel
        return "finished", "not cancelled: the job had already finished SUCCEEDED"
    return "requested", "cancel requested: the job ends FAILED once its handler stops"
