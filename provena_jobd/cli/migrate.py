"""`jobd migrate`: bring a database's schema to this jobd's version without serving.

`jobd serve` migrates at start too; this is for deployments that change the schema in a step
of their own (before rolling new nodes out). On PostgreSQL, migrations run under an advisory
lock, so nodes and this command starting at once apply each migration exactly once.
"""

from __future__ import annotations

import asyncio

import click

from .. import config
from ..errors import JobdError
from ..queue.backends import open_store
from ..queue.dialect import migrations
from ..redaction import shown_url
from .common import VariablesNamed, config_option


async def _migrate(storage: config.StorageSettings) -> None:
    store = open_store(storage)
    await store.open()  # opening migrates
    await store.close()


@click.command(cls=VariablesNamed)
@click.option(
    "--db",
    envvar="JOBD_DB",
    help="The database: a SQLite path or postgresql://user@host:5432/name "
    "[from the config: ./jobd.db].",
)
@config_option("A jobd.toml file (its [storage] db is migrated).")
def migrate(db: str | None, config_path: str | None) -> None:
    """Apply the numbered schema migrations to the database, then exit.

    Safe to run while other PostgreSQL nodes serve (an advisory lock orders migrations); a
    SQLite database must not be in use. Exits 0 on success, 1 on failure.
    """
    try:
        storage = config.load(config_path, overrides={"storage": {"db": db} if db else {}}).storage
        asyncio.run(_migrate(storage))
    except JobdError as exc:
        click.echo(f"jobd: error: {exc.message}", err=True)
        raise SystemExit(1) from None
    dialect = "postgres" if config.is_postgres_url(storage.db) else "sqlite"
    version = migrations(dialect)[-1].version
    click.echo(f"jobd: {shown_url(storage.db)} is at schema version {version}")
