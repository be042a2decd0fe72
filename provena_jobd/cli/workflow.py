"""`jobd workflow ID`: the chain of jobs a job belongs to, as a table."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .common import admin_hinted, admin_option, client_command, found_by_whole_id
from .output import counted, print_json, table, when

if TYPE_CHECKING:
    from ..client import JobdClient


@click.command()
@click.argument("session_id")
@admin_option
@client_command
async def workflow(client: JobdClient, session_id: str, admin: bool, as_json: bool) -> int:
    """Show the workflow a job belongs to: every step from its root, in launch order.

    A step's PARENT is the job that launched it. The last line says whether every step has
    finished. Exit 1 if a step FAILED.
    """
    async with admin_hinted(client, "workflow", session_id, admin):
        with found_by_whole_id(session_id, admin):
            chain = await client.workflow(session_id, admin=admin)
    if as_json:
        print_json(chain)
    else:
        rows = [
            (
                step.session_id,
                step.status.value,
                step.job_sub_type,
                step.parent_session_id or "-",
                when(step.finished_timestamp),
                step.info or "-",
            )
            for step in chain.steps
        ]
        table(("SESSION_ID", "STATUS", "SUB_TYPE", "PARENT", "FINISHED", "INFO"), rows)
        click.echo(f"{'done' if chain.done else 'running'}: {counted(len(chain.steps), 'step')}")
    return 1 if any(step.status.value == "FAILED" for step in chain.steps) else 0
