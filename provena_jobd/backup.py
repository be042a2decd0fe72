"""`jobd backup PATH`: a consistent copy of a live SQLite database, the server still running.

SQLite's online backup API copies the database as of one moment inside a read transaction.
In WAL mode readers never block the writer, so jobd keeps launching and finishing jobs while
the copy is made, and the copy never holds half of a transaction. Copying the file with `cp`
instead could catch the database mid-checkpoint and miss what is still in the WAL.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from .clock import monotonic
from .errors import BackupError
from .queue.dbfile import create_private

POSTGRES_ADVICE = (
    "this is a PostgreSQL database: back it up with PostgreSQL's own tools, "
    "e.g. pg_dump --format=custom --file=PATH URL (restore with pg_restore)"
)


@dataclass(frozen=True)
class BackupResult:
    """The written copy: its path, size and how long it took."""

    path: Path
    size_bytes: int
    seconds: float


def backup_sqlite(source: str, target: Path) -> BackupResult:
    """Copy the SQLite database at `source` to `target` (which must not exist yet)."""
    if source.startswith(("postgresql://", "postgres://")):
        raise BackupError(POSTGRES_ADVICE)
    if not Path(source).is_file():
        raise BackupError(f"no database at {source}")
    if target.exists():
        raise BackupError(f"{target} exists already; give a new path")
    if not target.parent.is_dir():
        raise BackupError(f"the folder does not exist: {target.parent}")
    # Written beside the target, then renamed: a failed backup never leaves a partial file.
    partial = target.with_name(f".{target.name}.partial")
    started = monotonic()
    try:
        create_private(partial)  # as the database: readable by its owner only
        # mode=rw: never create an empty database where a typo named none.
        with (
            contextlib.closing(
                sqlite3.connect(f"{Path(source).absolute().as_uri()}?mode=rw", uri=True)
            ) as live,
            contextlib.closing(sqlite3.connect(partial)) as copy,
        ):
            live.execute("PRAGMA busy_timeout = 5000")
            live.backup(copy)  # all pages in one step: one consistent snapshot
            # A standalone file: no WAL beside it to forget when it is moved.
            copy.execute("PRAGMA journal_mode = DELETE")
            (check,) = copy.execute("PRAGMA quick_check").fetchone()
            if check != "ok":
                raise BackupError(f"the copy failed its integrity check: {check}")
        with open(partial, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, target)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise BackupError(f"cannot back up {source}: {exc}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return BackupResult(target, target.stat().st_size, monotonic() - started)
