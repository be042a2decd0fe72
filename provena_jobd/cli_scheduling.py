"""`jobd schedules`, `jobd pause TYPE`, `jobd resume TYPE`, `jobd paused` (issue 14)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .cli import _client_options, _print_json, _run, _table, _when

if TYPE_CHECKING:
    from .client import JobdClient
    from .flow_control import PausedResponse


@click.command()
@_client_options
def schedules(url: str, token: str | None, as_json: bool) -> None:
    """List the periodic schedules ([[schedules]] in jobd.toml) with their next run time."""

    async def action(client: JobdClient) -> int:
        shown = await client.schedules()
        if as_json:
            _print_json(shown)
            return 0
        rows = [
            (
                s.name,
                s.cron,
                s.job_sub_type,
                s.user,
                s.missed,
                _when(s.next_run_at),
                _when(s.last_due_at),
                s.last_session_id or "-",
            )
            for s in shown.schedules
        ]
        headers = ("NAME", "CRON", "SUB_TYPE", "USER", "MISSED", "NEXT_RUN", "LAST_DUE", "LAST_JOB")
        _table(headers, rows)
        return 0

    _run(url, token, action)


def _show_paused(result: PausedResponse, as_json: bool) -> int:
    """Print the paused job types."""
    if as_json:
        _print_json(result)
    else:
        click.echo(f"paused: {', '.join(result.paused) or '-'}")
    return 0


def _pause_command(paused: bool) -> click.Command:
    verb = "pause" if paused else "resume"
    help_text = (
        "Pause a job type: its waiting jobs stay PENDING (their info says why), running jobs "
        "finish, launches are still accepted. Held in the database: it survives a restart."
        if paused
        else "Resume a paused job type: its waiting jobs run again."
    )

    @click.command(name=verb, help=help_text)
    @click.argument("job_type")
    @_client_options
    def command(job_type: str, url: str, token: str | None, as_json: bool) -> None:
        async def action(client: JobdClient) -> int:
            return _show_paused(await client.set_paused(job_type, paused), as_json)

        _run(url, token, action)

    return command


@click.command()
@_client_options
def paused(url: str, token: str | None, as_json: bool) -> None:
    """List the paused job types."""

    async def action(client: JobdClient) -> int:
        return _show_paused(await client.paused(), as_json)

    _run(url, token, action)


def add_commands(group: click.Group) -> None:
    """Register this module's commands on `jobd`."""
    for command in (schedules, _pause_command(True), _pause_command(False), paused):
        group.add_command(command)
