"""The SQL of a list page on SQLite: scope, optional filters, batches as one entry, keyset.

Kept apart from sqlite.py so the list's growing set of filters is one readable piece. The
filters are bound parameters, never spliced text.
"""

from __future__ import annotations

from typing import Any

from .store import ListScope

# What a text search looks in: the session id, username, sub type, batch id, info and
# payload (JSON text). SQLite's lower() folds ASCII letters only, on both sides, so the match
# is consistent.
_HAYSTACK = (
    "lower({t}.session_id || ' ' || {t}.username || ' ' || {t}.job_sub_type || ' ' "
    "|| coalesce({t}.batch_id, '') || ' ' || coalesce({t}.info, '') || ' ' "
    "|| CAST({t}.payload AS TEXT))"
)


def filter_clauses(scope: ListScope, table: str) -> tuple[list[str], list[Any]]:
    """WHERE clauses (and their parameters) for the scope and filters, on `table`'s columns."""
    where: list[str] = []
    parameters: list[Any] = []
    for column, value in (
        ("batch_id", scope.batch_id),
        ("username", scope.username),
        ("status", scope.status),
        ("job_type", scope.job_type),
        ("job_sub_type", scope.job_sub_type),
    ):
        if value is not None:
            where.append(f"{table}.{column} = ?")
            parameters.append(str(value))
    if scope.search is not None:
        where.append(f"instr({_HAYSTACK.format(t=table)}, lower(?)) > 0")
        parameters.append(scope.search)
    return where, parameters


def list_sql(
    scope: ListScope, columns: str, limit: int, after: tuple[int, int] | None
) -> tuple[str, list[Any]]:
    """The query for one page, newest first, after `after` ((created_timestamp, seq))."""
    where, parameters = filter_clauses(scope, "jobs")
    if scope.group_batches:
        # A batch is listed once, at its newest job among those the filters keep.
        newer, newer_parameters = filter_clauses(scope, "newer")
        newer_sql = " AND ".join(
            [
                "newer.batch_id = jobs.batch_id",
                "(newer.created_timestamp, newer.seq) > (jobs.created_timestamp, jobs.seq)",
                *newer,
            ]
        )
        where.append(
            f"(jobs.batch_id IS NULL OR NOT EXISTS (SELECT 1 FROM jobs AS newer WHERE {newer_sql}))"
        )
        parameters += newer_parameters
    if after is not None:
        where.append("(jobs.created_timestamp, jobs.seq) < (?, ?)")
        parameters += list(after)
    selected = ", ".join("jobs." + column.strip() for column in columns.split(","))
    sql = f"SELECT {selected} FROM jobs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY jobs.created_timestamp DESC, jobs.seq DESC LIMIT ?"
    return sql, [*parameters, limit + 1]
