"""`jobd serve`: load the settings, take the port, run the server until SIGTERM or Ctrl-C.

The only module of jobd that installs signal handlers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .. import config
from ..errors import JobdError
from ..redaction import secret_values, shown_url
from .common import VariablesNamed, config_option, fail, given_on_command_line
from .output import counted

if TYPE_CHECKING:
    from .. import logs
    from ..workers.shutdown import ShutdownTally

# The exit status when a SystemExit or KeyboardInterrupt escapes into the event loop.
EXIT_ESCAPED = 70


class _OneLineErrors(VariablesNamed):
    """`jobd serve`: a bad option or variable is one line and exit 2, like every startup error
    (instead of click's usage block)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse as click does; a usage error becomes `jobd: error: <what is wrong>`."""
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            fail(f"{exc.format_message()} (see jobd serve --help)")


def _port(context: click.Context, parameter: click.Parameter, value: str | None) -> int | None:
    """`--port` / JOBD_PORT: a TCP port number, 0-65535; the error names where it came from."""
    if value is None:
        return None
    port = int(value) if value.isascii() and value.isdigit() else -1
    if not 0 <= port <= 65535:
        source = context.get_parameter_source("port")
        where = "JOBD_PORT" if source is click.core.ParameterSource.ENVIRONMENT else "--port"
        raise click.UsageError(
            f"{where}: {value!r} is not a port number (0-65535; 0 picks a free one)"
        )
    return port


class _Boolean(click.types.BoolParamType):
    """A yes/no value (JOBD_INSECURE) whose error lists the values it takes: click's list
    starts with "", which it reads as no, but an empty variable is refused (VariablesNamed)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> bool:
        """click's reading; an unknown value names the accepted ones."""
        if self.str_to_bool(value) is None:
            accepted = ", ".join(sorted(state for state in self.bool_states if state))
            self.fail(
                f"{value!r} is not a valid boolean. Recognized values: {accepted}", param, ctx
            )
        return super().convert(value, param, ctx)


@click.command(cls=_OneLineErrors)
@click.option("--host", envvar="JOBD_HOST", help="Interface to listen on [127.0.0.1].")
@click.option(
    "--port",
    envvar="JOBD_PORT",
    callback=_port,
    help="Port; 0 picks a free one [8421].",
)
@click.option("--db", envvar="JOBD_DB", help="SQLite database file [./jobd.db].")
@config_option("A jobd.toml file.")
@click.option(
    "--insecure",
    is_flag=True,
    type=_Boolean(),
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
@click.option(
    "--log-format",
    default="text",
    show_default=True,
    envvar="JOBD_LOG_FORMAT",
    type=click.Choice(["text", "json"]),
    help="json: one JSON object per line (with its `action`), for log shippers.",
)
@click.option(
    "--ephemeral",
    is_flag=True,
    help="For test harnesses: a throw-away database in a temporary folder (deleted on exit), "
    "port 0 unless --port is given, no fsync, and one JSON line "
    '{"url": ..., "pid": ..., "db": ...} on stdout once requests are accepted.',
)
def serve(
    host: str | None,
    port: int | None,
    db: str | None,
    config_path: str | None,
    insecure: bool | None,
    durability: str | None,
    log_level: str,
    log_format: logs.LogFormat,
    ephemeral: bool,
) -> None:
    """Serve the Job API and run the workers until SIGTERM or Ctrl-C."""
    options = ServeOptions(
        host, port, db, config_path, insecure, durability, log_level, log_format
    )  # fmt: skip
    if not ephemeral:
        _serve_with(options, None)
        return
    if db is not None and given_on_command_line("db"):
        fail("--ephemeral uses a temporary database; do not combine it with --db")
    folder = Path(tempfile.mkdtemp(prefix="jobd-ephemeral-"))
    try:
        throw_away = dataclasses.replace(
            options,
            port=port if port is not None else 0,
            db=str(folder / "jobd.db"),
            durability=durability or "normal",
        )
        _serve_with(throw_away, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    """What `jobd serve` was given (None: not given, the config or default decides)."""

    host: str | None
    port: int | None
    db: str | None
    config_path: str | None
    insecure: bool | None
    durability: str | None
    log_level: str
    log_format: logs.LogFormat


def _serve_with(options: ServeOptions, ephemeral: Path | None) -> None:
    """Load the settings, check them and serve until stopped (ephemeral: in that folder)."""
    server_overrides: dict[str, Any] = {}
    if options.host is not None:
        server_overrides["host"] = options.host
    if options.port is not None:
        server_overrides["port"] = options.port
    if options.insecure:
        server_overrides["insecure"] = True
    storage: dict[str, Any] = {}
    if options.db is not None:
        storage["db"] = options.db
    if options.durability is not None:
        storage["durability"] = options.durability
    overrides: dict[str, dict[str, Any]] = {"server": server_overrides, "storage": storage}
    try:
        settings = config.load(options.config_path, overrides=overrides)
    except JobdError as exc:
        fail(exc.message)
    if options.config_path is not None:
        _import_beside(Path(options.config_path), settings)
    from .. import listen

    try:
        # Bound first: a bad host or a port in use is said as such, and before the database
        # is opened, so a start that cannot listen creates nothing. It listens once serving.
        sock = listen.bind(settings.server.host, settings.server.port)
        metrics_sock = None
        if settings.metrics.listen is not None:
            host, port = config.metrics_address(settings.metrics.listen)
            metrics_sock = listen.bind(host, port, " for metrics")
            listen.refuse_overlap(sock, metrics_sock, f"listen for metrics on {host}:{port}")
    except JobdError as exc:
        fail(exc.message)
    if (
        settings.auth.mode == "none"
        and not config.is_loopback(settings.server.host)
        and not settings.server.insecure
    ):
        fail(
            f"auth mode 'none' lets anyone act as every role; refusing to listen on "
            f"{settings.server.host}. Use a loopback host or pass --insecure."
        )
    from .. import logs  # imports aiohttp: only `serve` pays for it

    logs.configure(options.log_level, options.log_format, secret_values(settings))
    db_dir = Path(config.sqlite_path(settings.storage.db)).resolve().parent
    if not config.is_postgres_url(settings.storage.db) and not db_dir.is_dir():
        fail(f"the database folder does not exist: {db_dir}")
    _install_uvloop()
    try:
        _run_serving(_serve(settings, sock, metrics_sock, ephemeral is not None))
    except JobdError as exc:
        fail(exc.message)
    finally:
        sock.close()
        if metrics_sock is not None:
            metrics_sock.close()


def _import_beside(config_path: Path, settings: config.Settings) -> None:
    """Let a `[jobs.*]` callable name a module beside the config file, as the file's relative
    paths are taken from its folder: that folder goes last on the import path, so installed
    packages (and PYTHONPATH) still win over a file there of the same name."""
    if not any(route.handler == "python" for route in settings.jobs.values()):
        return
    folder = str(config_path.resolve().parent)
    if folder not in sys.path:
        sys.path.append(folder)


def _run_serving(main: Coroutine[Any, Any, None]) -> None:
    """Run the server's event loop; exit at once if SystemExit or KeyboardInterrupt escapes it.

    Handlers' own exits are caught in the runner. One raised anywhere else (a callback a
    handler scheduled, a library thread's signal) stops the loop mid-flight: draining from
    there can hang on half-stopped tasks and leave a deaf process behind. So jobd says why
    and exits with status 70 (EX_SOFTWARE), as after a crash; a supervisor restarts it and
    the restart reruns what was held (see "Crashes" in the README).
    """
    runner = asyncio.Runner()
    try:
        runner.run(main)
    except (SystemExit, KeyboardInterrupt) as exc:
        click.echo(
            f"jobd: error: {exc!r} raised outside any handler's task; exiting without "
            "draining (held jobs are rerun at the next start)",
            err=True,
        )
        sys.stderr.flush()
        os._exit(EXIT_ESCAPED)
    finally:
        runner.close()


async def _serve(
    settings: config.Settings,
    sock: socket.socket,
    metrics_sock: socket.socket | None,
    ephemeral: bool = False,
) -> None:
    from ..http.serve import running
    from ..server import tune_gc

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with running(settings, sock=sock, metrics_sock=metrics_sock) as jobd:
        tune_gc()
        click.echo(
            f"jobd: serving {jobd.url} (database {shown_url(settings.storage.db)})", err=True
        )
        if jobd.server.metrics_url:
            click.echo(f"jobd: metrics without auth at {jobd.server.metrics_url}", err=True)
        if ephemeral:
            # One JSON line, the only thing ever written on stdout: ready for requests.
            ready = {
                "url": jobd.url,
                "pid": os.getpid(),
                "db": shown_url(settings.storage.db),
            }
            click.echo(json.dumps(ready))
        else:
            # The URL alone on stdout, flushed, so a harness can read it (port 0 included).
            click.echo(jobd.url)
        sys.stdout.flush()
        await stop.wait()

        def now() -> None:
            click.echo("jobd: stopping now; unfinished jobs return to PENDING", err=True)
            jobd.server.hurry()

        # A second Ctrl-C (or SIGTERM) cuts the grace period short.
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, now)
        server = jobd.server
        outside = server.held_outside()
        click.echo(shutdown_message(server.running_jobs() - outside, outside, settings), err=True)
    abandoned = jobd.server.runner.abandoned
    stopped = stopped_message(jobd.server.shutdown_tally(), abandoned)
    if abandoned:
        # The store is closed and every job is recorded; only handlers that ignore
        # cancellation are left, and waiting for them would never end.
        click.echo(stopped, err=True)
        sys.stderr.flush()
        os._exit(0)
    click.echo(stopped, err=True)


def stopped_message(tally: ShutdownTally, abandoned: int) -> str:
    """The last line jobd writes: how its shutdown left the jobs it was running or held."""
    said = []
    if tally.finished:
        said.append(f"{counted(tally.finished, 'running job')} finished")
    if tally.returned:
        said.append(f"{counted(tally.returned, 'job')} went back to PENDING")
    if abandoned:
        said.append(f"{counted(abandoned, 'handler')} ignored cancellation")
    return f"jobd: stopped ({'; '.join(said)})" if said else "jobd: stopped"


def shutdown_message(running: int, outside: int, settings: config.Settings) -> str:
    """What jobd waits for as it stops, how not to wait, and what it leaves to outside
    workers (their jobs are theirs while their leases last, jobd running or not)."""
    said = "jobd: shutting down"
    if running:
        jobs = counted(running, "running job")
        said += (
            f": waiting up to {settings.server.shutdown_grace_s:g} s for {jobs} to finish "
            "(Ctrl-C again stops now; unfinished jobs return to PENDING)"
        )
    if outside:
        stay, lasts = (
            ("stays", "its lease lasts") if outside == 1 else ("stay", "their leases last")
        )
        said += (
            f"{';' if running else ':'} {counted(outside, 'job')} held by outside workers "
            f"{stay} theirs while {lasts}"
        )
    return said


def _install_uvloop() -> None:
    """Use uvloop where it is installed: it roughly doubles aiohttp's request rate."""
    if os.environ.get("JOBD_NO_UVLOOP"):
        return
    with contextlib.suppress(ImportError):
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
