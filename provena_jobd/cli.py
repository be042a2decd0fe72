"""The `jobd` command. The only module that installs signal handlers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from . import config, logs
from .errors import JobdError


def _fail(message: str) -> None:
    """A startup error: one clear line on stderr, exit status 2."""
    click.echo(f"jobd: error: {message}", err=True)
    sys.exit(2)


@click.group()
@click.version_option(package_name="provena-jobd")
def main() -> None:
    """jobd: a Provena-compatible job server in one process."""


@main.command()
@click.option("--host", envvar="JOBD_HOST", help="Interface to listen on [127.0.0.1].")
@click.option("--port", envvar="JOBD_PORT", type=int, help="Port; 0 picks a free one [8421].")
@click.option("--db", envvar="JOBD_DB", help="SQLite database file [./jobd.db].")
@click.option(
    "--config",
    "config_path",
    envvar="JOBD_CONFIG",
    type=click.Path(dir_okay=False),
    help="A jobd.toml file.",
)
@click.option(
    "--insecure",
    is_flag=True,
    default=None,
    envvar="JOBD_INSECURE",
    help="Allow auth mode 'none' on a non-loopback host.",
)
@click.option(
    "--durability",
    envvar="JOBD_DURABILITY",
    type=click.Choice(["full", "normal"]),
    help="full: fsync every commit [default]; normal: may lose the last commits on power loss.",
)
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    envvar="JOBD_LOG_LEVEL",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
def serve(
    host: str | None,
    port: int | None,
    db: str | None,
    config_path: str | None,
    insecure: bool | None,
    durability: str | None,
    log_level: str,
) -> None:
    """Serve the Job API and run the workers until SIGTERM or Ctrl-C."""
    server_overrides: dict[str, Any] = {}
    if host is not None:
        server_overrides["host"] = host
    if port is not None:
        server_overrides["port"] = port
    if insecure:
        server_overrides["insecure"] = True
    storage: dict[str, Any] = {}
    if db is not None:
        storage["db"] = db
    if durability is not None:
        storage["durability"] = durability
    overrides: dict[str, dict[str, Any]] = {"server": server_overrides, "storage": storage}
    try:
        settings = config.load(config_path, overrides=overrides)
    except JobdError as exc:
        _fail(exc.message)
        return
    if (
        settings.auth.mode == "none"
        and not config.is_loopback(settings.server.host)
        and not settings.server.insecure
    ):
        _fail(
            f"auth mode 'none' lets anyone act as every role; refusing to listen on "
            f"{settings.server.host}. Use a loopback host or pass --insecure."
        )
    logs.configure(log_level)
    db_dir = Path(settings.storage.db).resolve().parent
    if not db_dir.is_dir():
        _fail(f"the database folder does not exist: {db_dir}")
    _install_uvloop()
    try:
        asyncio.run(_serve(settings))
    except JobdError as exc:
        _fail(exc.message)
    except OSError as exc:
        _fail(f"cannot listen on {settings.server.host}:{settings.server.port}: {exc.strerror}")


async def _serve(settings: config.Settings) -> None:
    from .http.serve import running

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with running(settings) as jobd:
        click.echo(f"jobd: serving {jobd.url} (database {settings.storage.db})", err=True)
        # The URL alone on stdout, flushed, so a harness can read it (port 0 included).
        click.echo(jobd.url)
        sys.stdout.flush()
        await stop.wait()
        click.echo("jobd: shutting down: finishing running jobs", err=True)
    click.echo("jobd: stopped", err=True)


def _install_uvloop() -> None:
    """Use uvloop where it is installed: it roughly doubles aiohttp's request rate."""
    if os.environ.get("JOBD_NO_UVLOOP"):
        return
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


@main.group()
def token() -> None:
    """Static API tokens for auth mode 'token'."""


@token.command("create")
@click.option("--user", required=True, help="The user name the token acts as.")
@click.option(
    "--roles",
    default="",
    help="Comma-separated roles, e.g. job-service-read,job-service-write.",
)
def token_create(user: str, roles: str) -> None:
    """Print a new token once, and the lines to paste into jobd.toml."""
    from .identity import hash_token, new_token

    role_list = [role.strip() for role in roles.split(",") if role.strip()]
    secret = new_token()
    click.echo(f"token: {secret}")
    click.echo("Keep it secret: it is shown only now. Paste this into jobd.toml:")
    click.echo("")
    click.echo("[[auth.tokens]]")
    click.echo(f'sha256 = "{hash_token(secret)}"')
    click.echo(f'user = "{user}"')
    click.echo("roles = [" + ", ".join(f'"{role}"' for role in role_list) + "]")
