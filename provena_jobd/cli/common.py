"""What every client command shares: --url/--token/--json, --admin, --wait, and running one.

A client command is written as `async def command(client, ..., as_json) -> exit status` and
decorated with `client_command`, which adds the options, opens a `JobdClient` and turns the
server's refusal into `jobd: error: <detail>` and exit status 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import re
import shlex
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import click
from click.core import ParameterSource

from ..errors import JobdError
from ..models import JobStatus
from ..settings import DEFAULT_URL
from .output import show, show_job

if TYPE_CHECKING:
    from ..client import JobdClient
    from ..models import Job

# jobd's `detail` for a request that carries no token (identity.NOT_AUTHENTICATED; the client
# does not import the server's modules).
NOT_AUTHENTICATED = "Not authenticated"
WATCH_RECHECK_S = 2.0  # `jobs watch`, `batch show`: re-read after this long without an event
# A whole session id, as jobd (and the reference) write them: a lower-case UUID.
WHOLE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclasses.dataclass(frozen=True)
class ClientDefaults:
    """`jobd --url/--token/--json COMMAND`: what the client commands use unless they say.

    `url_from` is where `url` came from, for its errors: `--url`, `JOBD_URL` or "" (the
    default); `empty_jobd_url` and `empty_jobd_token` say JOBD_URL / JOBD_TOKEN is set but
    empty (click then takes the default).
    """

    url: str = DEFAULT_URL
    token: str | None = None
    as_json: bool = False
    url_from: str = ""
    empty_jobd_url: bool = False
    empty_jobd_token: bool = False

    def checked_url(self, given: str | None) -> str:
        """The URL to use: `given` (the command's own --url) or this one; a usage error if it
        is not an http(s) URL, or if it would be the default only because JOBD_URL is empty."""
        if given is not None:
            return checked_url(given, "--url")
        if self.empty_jobd_url and not self.url_from:
            raise click.UsageError(
                "JOBD_URL is set but empty: set it to jobd's URL (e.g. "
                f"{DEFAULT_URL}), or unset it to use that default"
            )
        return checked_url(self.url, self.url_from or "--url")

    def checked_token(self, given: str | None) -> str | None:
        """The token to send: `given` (the command's own --token) or this one; a usage error
        if there would be none only because JOBD_TOKEN is empty (`JOBD_TOKEN=$(cat missing)`)."""
        if given is None and self.token is None and self.empty_jobd_token:
            raise click.UsageError(
                "JOBD_TOKEN is set but empty: set it to your token, or unset it to send none"
            )
        return given or self.token


def checked_url(url: str, source: str) -> str:
    """`url` if it is an http:// or https:// URL with a host; else a usage error that names
    where it came from (`source`: `--url` or `JOBD_URL`)."""
    if "://" not in url:
        raise click.UsageError(
            f"{source} {url!r} needs a scheme: http://{url} or https://{url}"
            if url
            else f"{source} is empty: give jobd's URL, e.g. {DEFAULT_URL}"
        )
    try:
        parts = urlsplit(url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
        _ = parts.port  # raises ValueError for a port that is not a number 0-65535
    except ValueError:
        usable = False
    if not usable:
        raise click.UsageError(
            f"{source} {url!r} is not jobd's URL: http://HOST:PORT or https://HOST:PORT"
        )
    return url


def fail(message: str) -> NoReturn:
    """A startup error: one clear line on stderr, exit status 2."""
    click.echo(f"jobd: error: {message}", err=True)
    sys.exit(2)


class VariablesNamed(click.Command):
    """A command whose JOBD_* variables are checked as its options are: a bad value is said
    under the variable's name, and a variable set but empty is refused, as JOBD_URL is (click
    takes "" for unset, so `JOBD_PORT=` quietly meant the default port)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse as click does; then refuse a JOBD_* variable set to ""."""
        try:
            rest = super().parse_args(ctx, args)
        except click.BadParameter as exc:
            if exc.param is not None and _from_variable(ctx, exc.param):
                exc.param_hint = str(exc.param.envvar)  # not '--durability'
            raise
        for parameter in self.params:
            variable = parameter.envvar
            typed = ctx.get_parameter_source(parameter.name or "") is ParameterSource.COMMANDLINE
            if (
                isinstance(variable, str)
                and os.environ.get(variable) == ""
                and not typed
                and not ctx.resilient_parsing
            ):
                option = parameter.opts[0] if parameter.opts else parameter.name
                raise click.UsageError(
                    f"{variable} is set but empty: set it to a value for {option}, or unset "
                    "it to use the default"
                )
        return rest


def _from_variable(ctx: click.Context, parameter: click.Parameter) -> bool:
    """Whether `parameter`'s value came from its environment variable."""
    source = ctx.get_parameter_source(parameter.name or "")
    return isinstance(parameter.envvar, str) and source is ParameterSource.ENVIRONMENT


def given_on_command_line(name: str) -> bool:
    """Whether an option of the current command was typed (not taken from the environment)."""
    source = click.get_current_context().get_parameter_source(name)
    return source is click.core.ParameterSource.COMMANDLINE


ClientAction = Callable[..., Awaitable[int]]


def client_command(action: ClientAction) -> Callable[..., None]:
    """A click callback that runs `action(client, *args, as_json=..., **options)`.

    Adds `--url`, `--token` and `--json`. Given after the command they win; otherwise the
    group's (`jobd --url URL launch ...`), which come from the command line, then JOBD_URL /
    JOBD_TOKEN, then the defaults.
    """

    @functools.wraps(action)
    def command(*args: Any, url: str | None, token: str | None, as_json: bool, **kw: Any) -> None:
        defaults = click.get_current_context().find_object(ClientDefaults) or ClientDefaults()
        as_json = as_json or defaults.as_json
        chosen_url = defaults.checked_url(url)
        chosen_token = defaults.checked_token(token)
        url_from = "--url" if url is not None else defaults.url_from or "--url"

        def call(client: JobdClient) -> Awaitable[int]:
            return action(client, *args, as_json=as_json, **kw)

        run(chosen_url, chosen_token, call, url_from)

    decorated: Any = command
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
        help=f"jobd's URL (http:// or https://) [default: `jobd --url`, JOBD_URL, {DEFAULT_URL}].",
    )(decorated)
    wrapped: Callable[..., None] = decorated
    return wrapped


def config_option(purpose: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--config` / JOBD_CONFIG: a jobd.toml file, as `config_path`; `purpose` is its help."""
    return click.option(
        "--config",
        "config_path",
        envvar="JOBD_CONFIG",
        type=click.Path(dir_okay=False),
        help=purpose,
    )


admin_option = click.option(
    "--admin", is_flag=True, help="Use the admin route, for any user's jobs (needs its roles)."
)


def with_wait(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--wait` and `--timeout`."""
    command = click.option(
        "--timeout",
        "timeout_s",
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        help="With --wait: give up (exit 1) after this many seconds [wait as long as it takes].",
    )(command)
    return click.option(
        "--wait", is_flag=True, help="Wait until the job finishes; exit 1 if it FAILED."
    )(command)


@contextlib.contextmanager
def found_by_whole_id(session_id: str, admin: bool) -> Iterator[None]:
    """When jobd finds no job for `session_id` and it is not a whole id (the tail of one, say:
    ids launched in the same minute share their start), say how to find the job."""
    from ..client import NotFound

    try:
        yield
    except NotFound as exc:
        if WHOLE_ID.fullmatch(session_id):
            raise
        search = ["jobd", "jobs", "list", *(["--admin"] if admin else []), "--search", session_id]
        raise JobdError(
            f"{exc.message} {session_id!r} is not a whole session id; to find the job by part "
            f"of its id: {shlex.join(search)}"
        ) from None


@contextlib.asynccontextmanager
async def admin_hinted(
    client: JobdClient, command: str, session_id: str, admin: bool
) -> AsyncIterator[None]:
    """When the user route refuses another user's job (401) that the caller may read on the
    admin route, say so with the command that shows it (`command`: `jobs show`, ...); jobd's
    own answer stays as it is."""
    from ..client import JobdClientError, Unauthorized

    try:
        yield
    except Unauthorized as exc:
        if admin:
            raise
        try:  # the admin route answers only a caller with its roles
            await client.fetch(session_id, admin=True)
        except JobdClientError:
            raise exc from None
        hint = shlex.join(["jobd", *command.split(), "--admin", session_id])
        raise JobdError(
            f"{exc.message} It is another user's job; you may read it on the admin route: {hint}"
        ) from None


def run(
    url: str,
    token: str | None,
    action: Callable[[JobdClient], Awaitable[int]],
    url_from: str = "--url",
) -> None:
    """Run a client action; its exit status, or 1 with the server's detail on one line
    (`url_from`, `--url` or `JOBD_URL`, is named when the URL looks wrong)."""
    from ..client import JobdClient

    async def run() -> int:
        async with JobdClient(url, token) as client:
            return await action(client)

    try:
        status = asyncio.run(run())
    except JobdError as exc:
        click.echo(f"jobd: error: {_with_hint(exc, url, url_from, token)}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    if status:
        sys.exit(status)


def _with_hint(error: JobdError, url: str, url_from: str, token: str | None) -> str:
    """The error's message, and what to change when the cause is likely the caller's: a URL
    with a path after the host, or no token for a jobd that wants one."""
    from ..client import ResponseError, Unauthorized

    parts = urlsplit(url)
    if isinstance(error, ResponseError) and not error.from_jobd and parts.path.strip("/"):
        base = urlunsplit((parts.scheme, parts.netloc, "", "", ""))
        return f"{error.message}; {url_from} is the server's base URL, without a path: {base}"
    if isinstance(error, Unauthorized) and error.detail == NOT_AUTHENTICATED and not token:
        return f"{error.message} (pass --token TOKEN or set JOBD_TOKEN)"
    return error.message


def finished_status(job: Job) -> int:
    """Exit status for a job waited for: 0 if it SUCCEEDED, 1 if it FAILED."""
    return 0 if job.status is JobStatus.SUCCEEDED else 1


async def wait_and_show(
    client: JobdClient, started: str, session_id: str, timeout_s: float | None, as_json: bool
) -> int:
    """Say (on stderr) that the job `started` is waited for; wait for it to finish, show it,
    and return 0 if it SUCCEEDED, 1 if it FAILED."""
    if not as_json:
        click.echo(f"{started} {session_id}; waiting for it to finish", err=True)
    job = await client.wait(session_id, timeout_s=timeout_s)
    show(job, as_json, show_job)
    return finished_status(job)
