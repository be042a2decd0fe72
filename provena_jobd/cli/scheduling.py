"""`jobd schedules`, `jobd pause TYPE`, `jobd resume TYPE`, `jobd paused` (issue 14)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .common import client_command
from .output import print_json, table, when

if TYPE_CHECKING:
    from ..client import JobdClient
    from ..scheduling_models import PausedResponse

HEADERS = ("NAME", "CRON", "SUB_TYPE", "USER", "MISSED", "NEXT_RUN", "LAST_DUE", "LAST_JOB")


@click.command()
@client_command
async def schedules(client: JobdClient, as_json: bool) -> int:
    """List the periodic schedules ([[schedules]] in jobd.toml) with their next run time."""
    shown = await client.schedules()
    if as_json:
        print_json(shown)
        return 0
    rows = [
        (
            s.name,
            s.cron,
            s.job_sub_type,
            s.user,
            s.missed,
            when(s.next_run_at),
            when(s.last_due_at),
            s.last_session_id or "-",
        )
        for s in shown.schedules
    ]
    table(HEADERS, rows)
    return 0


def _show_paused(result: PausedResponse, as_json: bool) -> int:
    """Print the paused job types."""
    if as_json:
        print_json(result)
    else:
        click.echo(f"paused: {', '.join(result.paused) or '-'}")
    return 0


@click.command()
@click.argument("job_type")
@client_command
async def pause(client: JobdClient, job_type: str, as_json: bool) -> int:
    """Pause a job type: its waiting jobs stay PENDING until it is resumed.

    Their info says why; running jobs finish; launches are still accepted. Held in the
    database: it survives a restart.
    """
    return _show_paused(await client.set_paused(job_type, True), as_json)


@click.command()
@click.argument("job_type")
@client_command
async def resume(client: JobdClient, job_type: str, as_json: bool) -> int:
    """Resume a paused job type: its waiting jobs run again."""
    return _show_paused(await client.set_paused(job_type, False), as_json)


@click.command()
@client_command
async def paused(client: JobdClient, as_json: bool) -> int:
    """List the paused job types."""
    return _show_paused(await client.paused(), as_json)
