"""`jobd backup PATH`: a consistent copy of the live database, jobd still running."""

from __future__ import annotations

from pathlib import Path

import click

from .. import config
from ..backup import backup_sqlite
from ..errors import JobdError
from .common import VariablesNamed, config_option


@click.command(cls=VariablesNamed)
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--db", envvar="JOBD_DB", help="The database to copy [from the config: ./jobd.db].")
@config_option("A jobd.toml file (its [storage] db is copied).")
def backup(path: Path, db: str | None, config_path: str | None) -> None:
    """Write a consistent copy of jobd's database to PATH, while jobd keeps running.

    Restore by serving the copy: `jobd serve --db PATH`. For a PostgreSQL database, use
    pg_dump instead. Exits 0 on success, 1 when no copy could be made.
    """
    try:
        storage = {"db": db} if db is not None else {}
        source = config.load(config_path, overrides={"storage": storage}).storage.db
        if config.is_postgres_url(source):
            raise JobdError("a PostgreSQL database is backed up with pg_dump, not jobd backup")
        result = backup_sqlite(source, path)
    except JobdError as exc:
        click.echo(f"jobd: error: {exc.message}", err=True)
        raise SystemExit(1) from None
    megabytes = result.size_bytes / 1_000_000
    click.echo(
        f"jobd: backed up {source} to {result.path}: {megabytes:.1f} MB "
        f"({result.size_bytes} bytes) in {result.seconds:.2f} s"
    )
