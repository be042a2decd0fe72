"""Load a dialect's SQL: numbered migrations and a file of named queries, read once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\d{4})_[\w-]+\.sql$")


@dataclass(frozen=True)
class Migration:
    """One numbered schema change."""

    version: int
    name: str
    sql: str


@cache
def queries(dialect: str) -> dict[str, str]:
    """The named queries of `sql/<dialect>/queries.sql`."""
    text = (resources.files(__package__) / "sql" / dialect / "queries.sql").read_text("utf-8")
    parts = _NAME.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    named = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.strip().splitlines() if not line.lstrip().startswith("--")]
        named[name] = "\n".join(lines).strip().rstrip(";")
    return named


@cache
def migrations(dialect: str) -> tuple[Migration, ...]:
    """The numbered migrations of `sql/<dialect>/`, in order."""
    folder = resources.files(__package__) / "sql" / dialect
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), entry.name, entry.read_text("utf-8")))
    return tuple(sorted(found, key=lambda m: m.version))
