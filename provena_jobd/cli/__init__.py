"""The `jobd` command: the group, its global options, and every command registered on it.

Each command lives in a module of its own (`serve`, `tokens`, `launch`, `jobs`, `batch`,
`actions`, `workflow`, `pool`, `backup`, `migrate`, `scheduling`); `common` holds what the
client commands share and `output` how they print. Heavy imports (aiohttp, the server) stay
inside the commands that need them, and a command's module is imported only when that command
runs (or `--help` lists it), so the client commands start quickly.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import click
from click.core import ParameterSource

from ..settings import DEFAULT_URL
from .common import ClientDefaults

# Each command: the module that defines it, and its name there.
COMMANDS = {
    "serve": ("serve", "serve"),
    "token": ("tokens", "token"),
    "launch": ("launch", "launch"),
    "jobs": ("jobs", "jobs"),
    "batch": ("batch", "batch"),
    "retry": ("actions", "retry"),
    "cancel": ("actions", "cancel"),
    "workflow": ("workflow", "workflow"),
    "pool": ("pool", "pool"),
    "backup": ("backup", "backup"),
    "migrate": ("migrate", "migrate"),
    "schedules": ("scheduling", "schedules"),
    "pause": ("scheduling", "pause"),
    "resume": ("scheduling", "resume"),
    "paused": ("scheduling", "paused"),
}
# Commands that work on a database file or serve one, not talk to a server: a --url given to
# them would be silently ignored (`jobd --url X backup` copied ./jobd.db), so it is refused.
LOCAL_COMMANDS = frozenset({"serve", "backup", "migrate", "token"})


class LazyGroup(click.Group):
    """A group that imports a command's module the first time the command is asked for.

    click's documented pattern for lazily loaded subcommands; `--help` lists them by name,
    whatever the order they are loaded in.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command's name, sorted, loaded or not."""
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command, importing its module on first use."""
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            module_name, attribute = COMMANDS[cmd_name]
            module = importlib.import_module(f"{__name__}.{module_name}")
            command: Any = getattr(module, attribute)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup)
@click.version_option(package_name="provena-jobd")
@click.option(
    "--url",
    envvar="JOBD_URL",
    show_envvar=True,
    default=DEFAULT_URL,
    show_default=True,
    metavar="URL",
    help="jobd's URL (http:// or https://), for the client commands.",
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

    Times are printed in the local time zone (TZ chooses it) followed by the zone's
    abbreviation from the system's time zone database, `2026-12-02 07:46:35 AEDT`, which is
    numeric for a zone without a common one (`-03` for America/Sao_Paulo); a UTC offset
    (`+11:00`) only where the system gives none or a long name (Windows). --json gives epoch
    seconds. Texts from jobd (a job's info, why it waits) give their times in UTC.
    """
    source = context.get_parameter_source("url")
    if source is ParameterSource.COMMANDLINE and context.invoked_subcommand in LOCAL_COMMANDS:
        raise click.UsageError(
            f"--url is for the client commands; `jobd {context.invoked_subcommand}` talks to no "
            "server (it works on the database or config named by --db or --config)"
        )
    sources = {ParameterSource.COMMANDLINE: "--url", ParameterSource.ENVIRONMENT: "JOBD_URL"}
    url_from = sources.get(source, "") if source is not None else ""
    # click takes a variable set to "" as unset: JOBD_URL=$(cat missing) would quietly mean
    # the default server, an empty JOBD_TOKEN no token. The client commands refuse them
    # (common.ClientDefaults).
    empty = {name: os.environ.get(name) == "" for name in ("JOBD_URL", "JOBD_TOKEN")}
    context.obj = ClientDefaults(
        url, token, as_json, url_from, empty["JOBD_URL"], empty["JOBD_TOKEN"]
    )


__all__ = ["main"]
