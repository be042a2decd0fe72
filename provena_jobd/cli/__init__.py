"""The `jobd` command: the group, its global options, and every command registered on it.

Each command lives in a module of its own (`serve`, `tokens`, `launch`, `jobs`, `batch`,
`actions`, `workflow`, `pool`, `backup`); `common` holds what the client commands share and
`output` how they print. Heavy imports (aiohttp, the server) stay inside the commands that
need them, so `jobd --help` and the client commands start quickly.
"""

from __future__ import annotations

import click

from . import actions, backup, batch, jobs, launch, pool, serve, tokens, workflow
from .common import DEFAULT_URL, ClientDefaults


@click.group()
@click.version_option(package_name="provena-jobd")
@click.option(
    "--url",
    envvar="JOBD_URL",
    show_envvar=True,
    default=DEFAULT_URL,
    show_default=True,
    metavar="URL",
    help="jobd's URL, for the client commands.",
)
@click.option(
    "--token",
    envvar="JOBD_TOKEN",
    show_envvar=True,
    metavar="TOKEN",
    help="Bearer token (auth modes 'token' and 'jwt'), for the client commands.",
)
@click.option("--json", "as_json", is_flag=True, help="Client commands print JSON for scripts.")
@click.pass_context
def main(context: click.Context, url: str, token: str | None, as_json: bool) -> None:
    """jobd: a Provena-compatible job server in one process.

    `jobd serve` runs the server; the other commands are its client. They take --url
    (JOBD_URL) and --token (JOBD_TOKEN), before or after the command name, print tables, or
    JSON with --json, and exit 0 on success; 1 when jobd refuses the request or cannot be
    reached (one line on stderr, `jobd: error: <detail>`) or when a job or batch they wait
    for ends FAILED; 2 on a usage error.
    """
    context.obj = ClientDefaults(url, token, as_json)


# `jobd --help` lists commands by name, whatever the order they are added in.
for _command in (
    serve.serve,
    tokens.token,
    launch.launch,
    jobs.jobs,
    batch.batch,
    actions.retry,
    actions.cancel,
    workflow.workflow,
    pool.pool,
    backup.backup,
):
    main.add_command(_command)

__all__ = ["main"]
