"""Files jobd hands out behind signed links (generated reports), where every node can read them.

With SQLite (one node) they sit in a folder beside the database, as before. With PostgreSQL
any node may serve a link another node's worker made, so the bytes go in the database.
"""

from __future__ import annotations

from typing import Protocol

import anyio

from .postgres import PostgresStore
from .store import JobStore


class Files(Protocol):
    """Named files, written once."""

    async def put(self, name: str, data: bytes, now: float) -> None:
        """Keep `data` under `name`."""
        ...

    async def get(self, name: str) -> bytes | None:
        """The bytes kept under `name`, or None."""
        ...


class FolderFiles:
    """Files in a folder on this machine."""

    def __init__(self, folder: str) -> None:
        self.folder = anyio.Path(folder)

    async def put(self, name: str, data: bytes, now: float) -> None:
        """Write the file (creating the folder)."""
        await self.folder.mkdir(parents=True, exist_ok=True)
        await (self.folder / name).write_bytes(data)

    async def get(self, name: str) -> bytes | None:
        """Read the file, if it is there."""
        path = self.folder / name
        return await path.read_bytes() if await path.is_file() else None


class DatabaseFiles:
    """Files in the PostgreSQL database's `files` table, for every node."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store

    async def put(self, name: str, data: bytes, now: float) -> None:
        """Insert the file."""
        await self.store.connections.execute(
            "INSERT INTO files (name, data, created) VALUES ($1, $2, $3)", name, data, now
        )

    async def get(self, name: str) -> bytes | None:
        """Select the file."""
        data = await self.store.connections.fetchval("SELECT data FROM files WHERE name = $1", name)
        return None if data is None else bytes(data)


def files_for(store: JobStore, folder: str) -> Files:
    """Where the files of a jobd on `store` go: its database if shared, else `folder`."""
    return DatabaseFiles(store) if isinstance(store, PostgresStore) else FolderFiles(folder)
