"""The database file before SQLite opens it: is it ours to use, and is anyone else using it?

jobd creates a database only where no file exists. An existing file it cannot read as a jobd
database (empty, not SQLite, another program's, from a newer jobd) is refused, and nothing is
written: SQLite would otherwise initialise an empty file as a new database and throw away a
WAL beside it that still holds acknowledged launches.

One jobd per database: an exclusive `flock` on the database file itself, so the lock holds
whatever name (symlink, hard link) a second jobd is given. A file with several hard links is
refused outright, because SQLite keeps the WAL beside the *name* it opens: two names, two WALs,
and commits made under one name are invisible (and later harmful) under the other.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from pathlib import Path

from ..errors import StorageError

SQLITE_MAGIC = b"SQLite format 3\x00"


def real_path(path: str) -> str:
    """The database's path with symlinks resolved: SQLite's WAL and SHM go beside it."""
    return os.path.realpath(path)


class DatabaseLock:
    """An exclusive flock on the database file, held while this process serves it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock (creating the file if none exists) or raise a one-line StorageError."""
        try:
            # A new database is its owner's alone: its jobs hold payloads and results, and
            # SQLite gives its -wal and -shm files the database's permissions.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StorageError(f"cannot open database {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = _lock_holder(fd) or _read_owner(self.path)
            os.close(fd)
            raise StorageError(
                f"the database {self.path} is in use by another jobd (pid {owner}); "
                "stop it first, or give this one its own --db"
            ) from None
        self._fd = fd
        links = os.fstat(fd).st_nlink
        if links > 1:
            self.release()
            raise StorageError(
                f"the database {self.path} has {links} names (hard links); SQLite keeps its "
                "WAL beside the name it opens, so give jobd a file with one name only"
            )

    def note_owner(self) -> None:
        """Write our pid beside the database, for the message a second jobd prints."""
        with contextlib.suppress(OSError):
            Path(f"{self.path}.lock").write_text(str(os.getpid()))

    def release(self) -> None:
        """Drop the lock (the OS drops it too if the process dies)."""
        if self._fd is not None:
            # A clean exit leaves no note behind; removed while the lock is still held.
            with contextlib.suppress(OSError):
                os.unlink(f"{self.path}.lock")
            # Only after SQLite closed its connections: closing any descriptor of the file
            # drops this process's POSIX locks on it, which are SQLite's.
            os.close(self._fd)
            self._fd = None


def take_database(path: str, latest_version: int) -> tuple[DatabaseLock, bool]:
    """Lock the database file and check it is usable; returns the lock and whether it existed.

    Refused starts leave every file as it was (a file this call created is removed).
    """
    if os.path.isdir(path):
        raise StorageError(f"cannot open database {path}: it is a folder")
    existed = os.path.exists(path)
    lock = DatabaseLock(path)
    lock.acquire()
    # Reading a WAL database creates its -wal and -shm files; a refused start removes them
    # (we hold the lock, so no other jobd uses them).
    sidecars = [f"{path}{suffix}" for suffix in ("-wal", "-shm")]
    absent = [sidecar for sidecar in sidecars if not os.path.exists(sidecar)]
    try:
        check_database_file(path, existed, latest_version)
    except BaseException:
        for sidecar in absent:
            with contextlib.suppress(OSError):
                os.unlink(sidecar)
        lock.release()
        remove_if_created(path, existed)
        raise
    lock.note_owner()
    return lock, existed


def create_private(path: str | os.PathLike[str]) -> None:
    """Create an empty file only its owner may read and write (an empty file is an empty
    SQLite database), as a new database is (`DatabaseLock.acquire`)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def remove_if_created(path: str, existed: bool) -> None:
    """Remove the database file if it did not exist before and is still empty."""
    with contextlib.suppress(OSError):
        if not existed and os.path.getsize(path) == 0:
            os.unlink(path)


def _lock_holder(fd: int) -> str | None:
    """The pid holding a flock on this file, from Linux's /proc/locks (None elsewhere)."""
    stat = os.fstat(fd)
    inode = f"{os.major(stat.st_dev):02x}:{os.minor(stat.st_dev):02x}:{stat.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        # e.g. "1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF"
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == inode:
            return fields[4]
    return None


def _read_owner(path: str) -> str:
    """The pid the lock holder wrote beside the database, for the error message."""
    try:
        return Path(f"{path}.lock").read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def check_database_file(path: str, existed: bool, latest_version: int) -> None:
    """Refuse an existing file that is not a usable jobd database; write nothing."""
    if not existed:
        return
    size = os.path.getsize(path)
    if size == 0:
        raise StorageError(
            f"the database {path} is empty (0 bytes), not a jobd database; jobd creates a "
            "database only where no file exists (restore it from a backup, or remove it)"
        )
    with open(path, "rb") as handle:
        if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
            raise StorageError(f"the file {path} is not a SQLite database")
    # A read-only look at a WAL database creates its -wal and -shm files; `take_database`
    # removes them when this refuses the file.
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        ) as connection:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    except sqlite3.Error as exc:
        raise StorageError(f"cannot read the database {path}: {exc}") from None
    if version == 0 and tables:
        raise StorageError(f"the database {path} is not a jobd database (another program's)")
    if version > latest_version:
        raise StorageError(
            f"the database {path} was made by a newer jobd (schema {version}, this jobd "
            f"knows up to {latest_version}); upgrade jobd"
        )
    if version > 0 and "jobs" not in tables:
        raise StorageError(f"the database {path} is not a jobd database (no jobs table)")
