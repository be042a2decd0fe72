"""`jobd token create`: a static API token for auth mode 'token', printed once."""

from __future__ import annotations

import difflib

import click

from .. import config
from ..errors import JobdError
from .common import VariablesNamed, config_option


@click.group()
def token() -> None:
    """Static API tokens for auth mode 'token'."""


@token.command("create", cls=VariablesNamed)
@click.option("--user", required=True, help="The user name the token acts as.")
@click.option(
    "--roles",
    default="",
    help=(
        "Comma-separated roles, e.g. job-service-read,job-service-write "
        "(job-service-worker for an outside worker)."
    ),
)
@config_option("The jobd.toml whose [auth.roles] names the roles [the reference's names].")
def token_create(user: str, roles: str, config_path: str | None) -> None:
    """Print a new token once, and the lines to paste into jobd.toml."""
    from ..identity import hash_token, new_token

    try:
        auth = config.load(config_path).auth
    except JobdError as exc:
        raise click.UsageError(exc.message) from None
    names = auth.roles
    known = (names.read, names.write, names.admin, names.worker)
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
    click.echo("Keep it secret: it is shown only now. Paste this into jobd.toml", nl=False)
    if auth.mode == "token":
        click.echo(":\n")
    else:
        # Tokens work only in mode "token"; without it jobd refuses to start.
        click.echo(
            ' (if it already has an [auth] table, set mode = "token" in it rather than add '
            "a second):\n"
        )
        click.echo("[auth]")
        click.echo('mode = "token"')
        click.echo("")
    click.echo("[[auth.tokens]]")
    click.echo(f'sha256 = "{hash_token(secret)}"')
    click.echo(f'user = "{user}"')
    click.echo("roles = [" + ", ".join(f'"{role}"' for role in role_list) + "]")
