"""The SQL of a list page, for SQLite and PostgreSQL: scope, optional filters, batches as one
entry, keyset.

Kept apart from the backends so the list's growing set of filters is one readable piece,
written once for both dialects (they differ only in placeholders and text functions). The
filters are bound parameters, never spliced text.
"""

from __future__ import annotations

from typing import Any, Literal

from .store import ListScope

Dialect = Literal["sqlite", "postgres"]

# What a text search looks in: the session id, username, sub type, batch id, info and
# payload (JSON text). lower() applies to both sides, so the match is consistent (SQLite's
# folds ASCII letters only).
_HAYSTACK = (
    "{t}.session_id || ' ' || {t}.username || ' ' || {t}.job_sub_type || ' ' "
    "|| coalesce({t}.batch_id, '') || ' ' || coalesce({t}.info, '') || ' ' || {payload}"
)
_PAYLOAD_TEXT = {
    "sqlite": "CAST({t}.payload AS TEXT)",
    "postgres": "convert_from({t}.payload, 'UTF8')",
}
_CONTAINS = {"sqlite": "instr({hay}, {needle}) > 0", "postgres": "strpos({hay}, {needle}) > 0"}


class _Parameters:
    """Bound parameters in the order their placeholders appear in the text."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.values: list[Any] = []

    def mark(self, value: Any) -> str:
        """Bind `value`; its placeholder."""
        self.values.append(value)
        return "?" if self.dialect == "sqlite" else f"${len(self.values)}"


def _filter_clauses(scope: ListScope, table: str, bound: _Parameters) -> list[str]:
    """WHERE clauses for the scope and filters, on `table`'s columns."""
    where: list[str] = []
    for column, value in (
        ("batch_id", scope.batch_id),
        ("username", scope.username),
        ("status", scope.status),
        ("job_type", scope.job_type),
        ("job_sub_type", scope.job_sub_type),
    ):
        if value is not None:
            where.append(f"{table}.{column} = {bound.mark(str(value))}")
    if scope.search is not None:
        payload = _PAYLOAD_TEXT[bound.dialect].format(t=table)
        haystack = "lower(" + _HAYSTACK.format(t=table, payload=payload) + ")"
        needle = f"lower({bound.mark(scope.search)})"
        where.append(_CONTAINS[bound.dialect].format(hay=haystack, needle=needle))
    return where


def list_sql(
    dialect: Dialect, scope: ListScope, columns: str, limit: int, after: tuple[int, int] | None
) -> tuple[str, list[Any]]:
    """The query for one page, newest first, after `after` ((created_timestamp, seq))."""
    bound = _Parameters(dialect)
    where = _filter_clauses(scope, "jobs", bound)
    if scope.group_batches:
        # A batch is listed once, at its newest job among those the filters keep.
        newer_sql = " AND ".join(
            [
                "newer.batch_id = jobs.batch_id",
                "(newer.created_timestamp, newer.seq) > (jobs.created_timestamp, jobs.seq)",
                *_filter_clauses(scope, "newer", bound),
            ]
        )
        where.append(
            f"(jobs.batch_id IS NULL OR NOT EXISTS (SELECT 1 FROM jobs AS newer WHERE {newer_sql}))"
        )
    if after is not None:
        where.append(
            f"(jobs.created_timestamp, jobs.seq) < ({bound.mark(after[0])}, {bound.mark(after[1])})"
        )
    selected = ", ".join("jobs." + column.strip() for column in columns.split(","))
    sql = f"SELECT {selected} FROM jobs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY jobs.created_timestamp DESC, jobs.seq DESC LIMIT {bound.mark(limit + 1)}"
    return sql, bound.values
