"""The `jobd` command. The only module that installs signal handlers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import difflib
import functools
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import click
import msgspec

from . import config
from .errors import JobdError
from .models import TERMINAL_STATUSES, JobStatus
from .redaction import secret_values

if TYPE_CHECKING:
    from . import logs
    from .client import EventStream, JobdClient
    from .models import BatchSummary, Job, LaunchJobResponse


# The exit status when a SystemExit or KeyboardInterrupt escapes into the event loop.
EXIT_ESCAPED = 70


def _fail(message: str) -> NoReturn:
    """A startup error: one clear line on stderr, exit status 2."""
    click.echo(f"jobd: error: {message}", err=True)
    sys.exit(2)


class _OneLineErrors(click.Command):
    """`jobd serve`: a bad option or variable is one line and exit 2, like every startup error
    (instead of click's usage block)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse as click does; a usage error becomes `jobd: error: <what is wrong>`."""
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            _fail(f"{exc.format_message()} (see jobd serve --help)")


DEFAULT_URL = "http://127.0.0.1:8421"


@dataclasses.dataclass(frozen=True)
class ClientDefaults:
    """`jobd --url/--token/--json COMMAND`: what the client commands use unless they say."""

    url: str = DEFAULT_URL
    token: str | None = None
    as_json: bool = False


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


@main.command(cls=_OneLineErrors)
@click.option("--host", envvar="JOBD_HOST", help="Interface to listen on [127.0.0.1].")
@click.option(
    "--port",
    envvar="JOBD_PORT",
    callback=_port,
    help="Port; 0 picks a free one [8421].",
)
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
    if not ephemeral:
        _serve_with(
            host, port, db, config_path, insecure, durability, (log_level, log_format), None
        )
        return
    if db is not None and _given_on_command_line("db"):
        _fail("--ephemeral uses a temporary database; do not combine it with --db")
    folder = Path(tempfile.mkdtemp(prefix="jobd-ephemeral-"))
    try:
        _serve_with(
            host,
            port if port is not None else 0,
            str(folder / "jobd.db"),
            config_path,
            insecure,
            durability or "normal",
            (log_level, log_format),
            folder,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _given_on_command_line(name: str) -> bool:
    """Whether an option of the current command was typed (not taken from the environment)."""
    source = click.get_current_context().get_parameter_source(name)
    return source is click.core.ParameterSource.COMMANDLINE


def _serve_with(
    host: str | None,
    port: int | None,
    db: str | None,
    config_path: str | None,
    insecure: bool | None,
    durability: str | None,
    logging_options: tuple[str, logs.LogFormat],
    ephemeral: Path | None,
) -> None:
    """Load the settings, check them and serve until stopped (ephemeral: in that folder)."""
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
    from . import listen

    try:
        # Bound first: a bad host or a port in use is said as such, and before the database
        # is opened, so a start that cannot listen creates nothing. It listens once serving.
        sock = listen.bind(settings.server.host, settings.server.port)
    except JobdError as exc:
        _fail(exc.message)
    if (
        settings.auth.mode == "none"
        and not config.is_loopback(settings.server.host)
        and not settings.server.insecure
    ):
        _fail(
            f"auth mode 'none' lets anyone act as every role; refusing to listen on "
            f"{settings.server.host}. Use a loopback host or pass --insecure."
        )
    from . import logs  # imports aiohttp: only `serve` pays for it

    log_level, log_format = logging_options
    logs.configure(log_level, log_format, secret_values(settings))
    db_dir = Path(settings.storage.db).resolve().parent
    if not db_dir.is_dir():
        _fail(f"the database folder does not exist: {db_dir}")
    _install_uvloop()
    try:
        _run_serving(_serve(settings, sock, ephemeral is not None))
    except JobdError as exc:
        _fail(exc.message)
    finally:
        sock.close()


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


async def _serve(settings: config.Settings, sock: socket.socket, ephemeral: bool = False) -> None:
    from .http.serve import running
    from .server import tune_gc

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with running(settings, sock=sock) as jobd:
        tune_gc()
        click.echo(f"jobd: serving {jobd.url} (database {settings.storage.db})", err=True)
        if jobd.server.metrics_url:
            click.echo(f"jobd: metrics without auth at {jobd.server.metrics_url}", err=True)
        if ephemeral:
            # One JSON line, the only thing ever written on stdout: ready for requests.
            ready = {"url": jobd.url, "pid": os.getpid(), "db": settings.storage.db}
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
        click.echo(_shutdown_message(jobd.server.running_jobs(), settings), err=True)
    abandoned = jobd.server.runner.abandoned
    if abandoned:
        # The store is closed and every job is recorded; only handlers that ignore
        # cancellation are left, and waiting for them would never end.
        click.echo(f"jobd: stopped ({abandoned} handlers ignored cancellation)", err=True)
        sys.stderr.flush()
        os._exit(0)
    click.echo("jobd: stopped", err=True)


def _shutdown_message(running: int, settings: config.Settings) -> str:
    """What jobd waits for as it stops, and how not to wait."""
    if not running:
        return "jobd: shutting down"
    jobs = "1 running job" if running == 1 else f"{running} running jobs"
    return (
        f"jobd: shutting down: waiting up to {settings.server.shutdown_grace_s:g} s for {jobs} "
        "to finish (Ctrl-C again stops now; unfinished jobs return to PENDING)"
    )


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
@click.option(
    "--config",
    "config_path",
    envvar="JOBD_CONFIG",
    type=click.Path(dir_okay=False),
    help="The jobd.toml whose [auth.roles] names the roles [the reference's names].",
)
def token_create(user: str, roles: str, config_path: str | None) -> None:
    """Print a new token once, and the lines to paste into jobd.toml."""
    from .identity import hash_token, new_token

    try:
        names = config.load(config_path).auth.roles
    except JobdError as exc:
        raise click.UsageError(exc.message) from None
    known = (names.read, names.write, names.admin)
    role_list = [role.strip() for role in roles.split(",") if role.strip()]
    for role in role_list:
        if role not in known:
            close = difflib.get_close_matches(role, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise click.BadParameter(
                f"unknown role {role!r} ({hint}roles: {', '.join(known)})", param_hint="--roles"
            )
    secret = new_token()
    click.echo(f"token: {secret}")
    click.echo("Keep it secret: it is shown only now. Paste this into jobd.toml:")
    click.echo("")
    click.echo("[[auth.tokens]]")
    click.echo(f'sha256 = "{hash_token(secret)}"')
    click.echo(f'user = "{user}"')
    click.echo("roles = [" + ", ".join(f'"{role}"' for role in role_list) + "]")


# -- the client commands: jobd launch / jobs / batch / retry / cancel / pool ---------------------
#
# Exit status: 0 done; 1 jobd refused the request or could not be reached (one line on stderr:
# `jobd: error: <detail>`), or a job (or batch) that the command waited for ended FAILED;
# 2 a usage error (bad option or payload).

F = TypeVar("F", bound=Callable[..., Any])
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
WATCH_RECHECK_S = 2.0  # `jobs watch`, `batch show`: re-read after this long without an event


def _client_options(command: F) -> F:
    """`--url`, `--token` and `--json`, shared by every client command.

    Given after the command they win; otherwise the group's (`jobd --url URL launch ...`),
    which come from the command line, then JOBD_URL / JOBD_TOKEN, then the defaults.
    """

    @functools.wraps(command)
    def with_defaults(
        *args: Any, url: str | None, token: str | None, as_json: bool, **kw: Any
    ) -> Any:
        defaults = click.get_current_context().find_object(ClientDefaults) or ClientDefaults()
        return command(
            *args,
            url=url or defaults.url,
            token=token or defaults.token,
            as_json=as_json or defaults.as_json,
            **kw,
        )

    decorated: Any = with_defaults
    decorated = click.option(
        "--json", "as_json", is_flag=True, help="Print JSON for scripts instead of a table."
    )(decorated)
    decorated = click.option(
        "--token",
        metavar="TOKEN",
        help="Bearer token (auth modes 'token' and 'jwt') [default: `jobd --token`, JOBD_TOKEN].",
    )(decorated)
    decorated = click.option(
        "--url",
        metavar="URL",
        help=f"jobd's URL [default: `jobd --url`, JOBD_URL, {DEFAULT_URL}].",
    )(decorated)
    return cast(F, decorated)


_admin_option = click.option(
    "--admin", is_flag=True, help="Use the admin route, for any user's jobs (needs its roles)."
)


def _run(url: str, token: str | None, action: Callable[[JobdClient], Awaitable[int]]) -> None:
    """Run a client action; its exit status, or 1 with the server's detail on one line."""
    from .client import JobdClient

    async def run() -> int:
        async with JobdClient(url, token) as client:
            return await action(client)

    try:
        status = asyncio.run(run())
    except JobdError as exc:
        click.echo(f"jobd: error: {exc.message}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    if status:
        sys.exit(status)


def _print_json(value: Any) -> None:
    """One compact JSON document on one line."""
    click.echo(msgspec.json.encode(value).decode())


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns aligned with two spaces; the last column is not padded."""
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]
    for row in [headers, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        click.echo("  ".join([*cells, row[-1]]).rstrip())


def _when(timestamp: float | None) -> str:
    """An epoch timestamp in local time, or `-`."""
    return "-" if timestamp is None else time.strftime(TIME_FORMAT, time.localtime(timestamp))


def _raw(value: msgspec.Raw) -> str:
    """Raw JSON as compact text."""
    return bytes(value).decode()


def _show_job(job: Job) -> None:
    """Every field of a job, one per line."""
    fields = [
        ("session_id", job.session_id),
        ("status", job.status.value),
        ("info", job.info or "-"),
        ("job_type", job.job_type),
        ("job_sub_type", job.job_sub_type),
        ("username", job.username),
        ("batch_id", job.batch_id or "-"),
        ("created", _when(job.created_timestamp)),
        ("started", _when(job.started_timestamp)),
        ("finished", _when(job.finished_timestamp)),
        ("attempt", str(job.attempt)),
        ("progress", "-" if job.progress is None else f"{job.progress:.0%}"),
        ("parent_session_id", job.parent_session_id or "-"),
        ("retry_of", job.retry_of or "-"),
        ("payload", _raw(job.payload)),
        ("result", _raw(job.result)),
    ]
    _table(("field", "value"), fields)


def _finished_status(job: Job) -> int:
    """Exit status for a job waited for: 0 if it SUCCEEDED, 1 if it FAILED."""
    return 0 if job.status is JobStatus.SUCCEEDED else 1


def _read_payload(context: click.Context, parameter: click.Parameter, value: str) -> dict[str, Any]:
    """`--payload`: JSON text, `@file` or `@-` (stdin); it must be a JSON object."""
    text = value
    if value.startswith("@"):
        name = value[1:]
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {name}: {exc.strerror}") from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise click.BadParameter("the payload must be a JSON object")
    return payload


async def _wait_and_show(
    client: JobdClient, session_id: str, timeout_s: float | None, as_json: bool
) -> int:
    """Wait for a job to finish, show it, and return 0 if it SUCCEEDED, 1 if it FAILED."""
    job = await client.wait(session_id, timeout_s=timeout_s)
    if as_json:
        _print_json(job)
    else:
        _show_job(job)
    return _finished_status(job)


_wait_options = [
    click.option("--wait", is_flag=True, help="Wait until the job finishes; exit 1 if it FAILED."),
    click.option(
        "--timeout",
        "timeout_s",
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        help="With --wait: give up (exit 1) after this many seconds [wait as long as it takes].",
    ),
]


def _with_wait(command: F) -> F:
    """`--wait` and `--timeout`."""
    for option in reversed(_wait_options):
        command = option(command)
    return command


@main.command()
@click.argument("job_type")
@click.argument("sub_type")
@click.option(
    "--payload",
    default="{}",
    show_default=True,
    metavar="JSON|@FILE",
    callback=_read_payload,
    help="The job's payload: JSON text, @file, or @- for stdin.",
)
@click.option(
    "--payloads",
    "payloads_file",
    metavar="FILE",
    help="Launch one job per line of FILE (JSON Lines: one payload object a line; - for "
    "stdin), in order; every line is checked before any is launched.",
)
@click.option(
    "--batch",
    metavar="new|ID",
    help="'new' starts a batch with this job (with --payloads: with all of them); an ID adds "
    "to that batch.",
)
@click.option("--username", help="Launch for this user (needs the admin role).")
@_with_wait
@_client_options
def launch(
    job_type: str,
    sub_type: str,
    payload: dict[str, Any],
    payloads_file: str | None,
    batch: str | None,
    username: str | None,
    wait: bool,
    timeout_s: float | None,
    url: str,
    token: str | None,
    as_json: bool,
) -> None:
    """Launch a job of JOB_TYPE and SUB_TYPE; print its session id (and batch id).

    With --payloads, launch many and print one line per job (with --json, a JSON list); with
    --wait, wait for all of them and exit 1 if any FAILED.
    """
    new_batch = batch == "new"
    batch_id = None if batch is None or new_batch else batch
    if payloads_file is not None:
        from . import cli_bulk

        if _given_on_command_line("payload"):
            raise click.UsageError("give --payload or --payloads, not both")
        many = cli_bulk.read_payloads(payloads_file)

        async def launch_many(client: JobdClient) -> int:
            try:
                launched = await cli_bulk.launch_all(
                    client, job_type, sub_type, many,
                    username=username, new_batch=new_batch, batch_id=batch_id,
                )  # fmt: skip
            except cli_bulk.PartlyLaunched as exc:
                _show_launched(exc.launched, as_json)
                raise
            if not wait:
                _show_launched(launched, as_json)
                return 0
            if not as_json:
                click.echo(f"launched {len(launched)} jobs; waiting for them to finish", err=True)
            try:
                async with asyncio.timeout(timeout_s):  # for all of them together
                    jobs = [await client.wait(one.session_id) for one in launched]
            except TimeoutError:
                message = f"the {len(launched)} jobs did not all finish within {timeout_s:g} s"
                raise JobdError(message) from None
            if as_json:
                _print_json(jobs)
            else:
                _list_table(jobs)
            return max(_finished_status(job) for job in jobs)

        _run(url, token, launch_many)
        return

    async def action(client: JobdClient) -> int:
        launched = await client.launch(
            job_type, sub_type, payload, username=username, new_batch=new_batch, batch_id=batch_id
        )
        if wait:
            if not as_json:
                click.echo(f"launched {launched.session_id}; waiting for it to finish", err=True)
            return await _wait_and_show(client, launched.session_id, timeout_s, as_json)
        if as_json:
            _print_json(launched)
        else:
            _table(
                ("field", "value"),
                [("session_id", launched.session_id), ("batch_id", launched.batch_id or "-")],
            )
        return 0

    _run(url, token, action)


def _show_launched(launched: Sequence[LaunchJobResponse], as_json: bool) -> None:
    """The jobs a bulk launch started: a JSON list, or SESSION_ID and BATCH_ID columns."""
    if as_json:
        _print_json(launched)
    elif launched:
        _table(("SESSION_ID", "BATCH_ID"), [(j.session_id, j.batch_id or "-") for j in launched])


@main.group()
def jobs() -> None:
    """List, show and watch jobs."""


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
@_admin_option
@_client_options
def jobs_list(
    limit: int,
    batch_id: str | None,
    user: str | None,
    admin: bool,
    url: str,
    token: str | None,
    as_json: bool,
) -> None:
    """List your jobs (or a batch's), newest first."""

    async def action(client: JobdClient) -> int:
        most = limit or None
        page_size = min(limit or 1000, 1000)
        found = (
            client.list_batch(batch_id, admin=admin, username=user, page_size=page_size, limit=most)
            if batch_id is not None
            else client.list(admin=admin, username=user, page_size=page_size, limit=most)
        )
        listed = [job async for job in found]
        if as_json:
            _print_json(listed)
        else:
            _list_table(listed)
        return 0

    _run(url, token, action)


def _list_table(listed: Sequence[Job], info_width: int = 60) -> None:
    """Jobs as a table, one a line; a long `info` is cut to `info_width` characters."""
    rows = [
        (
            job.session_id,
            _when(job.created_timestamp),
            job.status.value,
            job.job_type,
            job.job_sub_type,
            job.username,
            job.batch_id or "-",
            _cut(job.info or "-", info_width),
        )
        for job in listed
    ]
    _table(("SESSION_ID", "CREATED", "STATUS", "TYPE", "SUB_TYPE", "USER", "BATCH", "INFO"), rows)


def _cut(text: str, width: int) -> str:
    """`text` on one line, at most `width` characters (an ellipsis marks a cut)."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@jobs.command("show")
@click.argument("session_id")
@_admin_option
@_client_options
def jobs_show(session_id: str, admin: bool, url: str, token: str | None, as_json: bool) -> None:
    """Show one job, every field."""

    async def action(client: JobdClient) -> int:
        job = await client.fetch(session_id, admin=admin)
        if as_json:
            _print_json(job)
        else:
            _show_job(job)
        return 0

    _run(url, token, action)


@jobs.command("watch")
@click.argument("session_id")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Give up (exit 1) after this many seconds [watch as long as it takes].",
)
@_admin_option
@_client_options
def jobs_watch(
    session_id: str,
    timeout_s: float | None,
    admin: bool,
    url: str,
    token: str | None,
    as_json: bool,
) -> None:
    """Print a job's status as it changes until it finishes; exit 1 if it FAILED.

    With --json, one JSON job per line (each change).
    """

    def show(job: Job) -> None:
        if as_json:
            _print_json(job)
            return
        progress = "" if job.progress is None else f"  {job.progress:.0%}"
        # A finished job shows when it finished, not when we looked.
        finished = job.finished_timestamp if job.status in TERMINAL_STATUSES else None
        stamp = time.strftime("%H:%M:%S", time.localtime(finished))
        click.echo(f"{stamp}  {job.status.value}{progress}  {job.info or ''}".rstrip())

    async def action(client: JobdClient) -> int:
        try:
            async with asyncio.timeout(timeout_s), client.events() as events:
                job = await client.fetch(session_id, admin=admin)
                show(job)
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
                        show(changed)
                    job = changed
        except TimeoutError:
            raise JobdError(f"job {session_id} did not finish within {timeout_s:g} s") from None
        return _finished_status(job)

    _run(url, token, action)


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


@main.group()
def batch() -> None:
    """Follow batches of jobs."""


@batch.command("show")
@click.argument("batch_id")
@click.option("--no-wait", is_flag=True, help="Show the counts now instead of following the batch.")
@_admin_option
@_client_options
def batch_show(
    batch_id: str, no_wait: bool, admin: bool, url: str, token: str | None, as_json: bool
) -> None:
    """Show a batch's progress as a bar until all its jobs have finished.

    Exit 1 if any of them FAILED or there is no such batch. On a terminal the bar redraws in
    place; otherwise a line is printed whenever the counts change. With --json, the final
    counts as one JSON object.
    """
    redraw = sys.stdout.isatty() and not as_json

    def draw(summary: BatchSummary, last: list[str]) -> None:
        line = _progress_line(summary)
        if as_json or line == last[0]:
            return
        last[0] = line
        if redraw:
            click.echo("\r" + line + "\x1b[K", nl=False)
        else:
            click.echo(line)

    async def action(client: JobdClient) -> int:
        last = [""]
        async with client.events() as events:
            summary = await client.batch_summary(batch_id, admin=admin)
            draw(summary, last)
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
                        draw(summary, last)
                        await asyncio.sleep(0.1)  # at most ten redraws a second
                finally:
                    follower.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await follower
        if redraw:
            click.echo("")
        if as_json:
            _print_json(summary)
        if no_wait:
            return 0
        return 0 if summary.all_succeeded else 1

    _run(url, token, action)


async def _batch_changes(events: EventStream, batch_id: str, changed: asyncio.Event) -> None:
    """Set `changed` whenever a job of the batch changes."""
    async for job in events:
        if job.batch_id == batch_id:
            changed.set()


def _progress_line(summary: BatchSummary, width: int = 30) -> str:
    """`[#####---]  5/8 finished  SUCCEEDED 4  FAILED 1  PENDING 3` for a batch."""
    finished = summary.counts.get("SUCCEEDED", 0) + summary.counts.get("FAILED", 0)
    filled = width * finished // summary.total if summary.total else 0
    counts = "  ".join(f"{status} {n}" for status, n in summary.counts.items() if n)
    state = "done" if summary.done else "finished"
    return f"[{'#' * filled}{'-' * (width - filled)}]  {finished}/{summary.total} {state}  {counts}"


@main.command()
@click.argument("session_id")
@_admin_option
@_with_wait
@_client_options
def retry(
    session_id: str,
    admin: bool,
    wait: bool,
    timeout_s: float | None,
    url: str,
    token: str | None,
    as_json: bool,
) -> None:
    """Relaunch a FAILED job as a new job; print the new session id."""

    async def action(client: JobdClient) -> int:
        retried = await client.retry(session_id, admin=admin)
        if wait:
            if not as_json:
                click.echo(f"retried as {retried.session_id}; waiting for it to finish", err=True)
            return await _wait_and_show(client, retried.session_id, timeout_s, as_json)
        if as_json:
            _print_json(retried)
        else:
            click.echo(retried.session_id)
        return 0

    _run(url, token, action)


@main.command()
@click.argument("session_id")
@_admin_option
@_client_options
def cancel(session_id: str, admin: bool, url: str, token: str | None, as_json: bool) -> None:
    """Cancel a job: a waiting one ends FAILED now, a running one is asked to stop."""

    async def action(client: JobdClient) -> int:
        job = await client.cancel(session_id, admin=admin)
        if as_json:
            _print_json(job)
        else:
            click.echo(f"{job.session_id}  {job.status.value}  {job.info or ''}".rstrip())
        return 0

    _run(url, token, action)


@main.command()
@_client_options
def pool(url: str, token: str | None, as_json: bool) -> None:
    """Show each job type's pool: workers by state, jobs running and waiting, cold starts."""

    async def action(client: JobdClient) -> int:
        pools = await client.pool()
        if as_json:
            _print_json(pools)
            return 0
        rows = [
            (
                snapshot.job_type,
                str(snapshot.workers.get("provisioning", 0)),
                str(snapshot.workers.get("idle", 0)),
                str(snapshot.workers.get("busy", 0)),
                f"{snapshot.running_jobs}",
                f"{snapshot.waiting}",
                f"{snapshot.cold_starts}",
                f"{snapshot.jobs_finished}",
                f"{snapshot.settings.max_workers}",
            )
            for snapshot in pools.pools
        ]
        headers = (
            "JOB_TYPE",
            "PROVISIONING",
            "IDLE",
            "BUSY",
            "RUNNING",
            "WAITING",
            "COLD_STARTS",
            "FINISHED",
            "MAX_WORKERS",
        )
        _table(headers, rows)
        outside = [(s.job_type, w) for s in pools.pools for w in s.processes]
        if outside:  # workers outside jobd: the processes it started, with their pids
            click.echo()
            process_rows = [
                (job_type, w.worker_id, str(w.pid or "-"), w.state, str(w.jobs))
                for job_type, w in outside
            ]
            _table(("JOB_TYPE", "WORKER", "PID", "STATE", "JOBS"), process_rows)
        return 0

    _run(url, token, action)


# Commands in modules of their own register themselves on `main` when imported.
from . import cli_workflow  # noqa: E402, F401

# `jobd backup` lives in its own module; registered here so `jobd --help` lists it.
from .backup import backup as _backup  # noqa: E402

main.add_command(_backup)

# `jobd schedules`, `pause`, `resume`, `paused` (issue 14) live in their own module.
from .cli_scheduling import add_commands as _add_scheduling_commands  # noqa: E402

_add_scheduling_commands(main)
