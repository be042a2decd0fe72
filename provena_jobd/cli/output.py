"""How the client commands print: aligned tables for people, one-line JSON for scripts."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click
import msgspec

if TYPE_CHECKING:
    from ..models import BatchSummary, Job, JobResponse, LaunchJobResponse, Waiting

# Every time the CLI prints is local (TZ chooses the zone) and followed by its zone, as `when`
# writes it: jobd's own texts (a job's `info`, `why`) say their times in UTC, and a local time
# printed beside them without a zone reads as the same clock.
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
CLOCK_FORMAT = "%H:%M:%S"  # `jobs watch`: one line per change, the date would be noise
T = TypeVar("T")
# What `jobd launch` says of a launch jobd answered from an earlier one with the same
# idempotency key (the API's `Idempotent-Replayed: true`): the output is otherwise the same.
REPLAYED_NOTE = (
    "an earlier launch with this idempotency key made this job; nothing new was launched"
)


def print_json(value: Any) -> None:
    """One compact JSON document on one line."""
    click.echo(msgspec.json.encode(value).decode())


def show(value: T, as_json: bool, for_people: Callable[[T], None]) -> None:
    """`value` as one JSON line for scripts (--json), or printed by `for_people`."""
    if as_json:
        print_json(value)
    else:
        for_people(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Columns aligned with two spaces; the last column is not padded."""
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(headers)]
    for row in [headers, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        click.echo("  ".join([*cells, row[-1]]).rstrip())


def when(timestamp: float | None, layout: str = TIME_FORMAT) -> str:
    """An epoch timestamp in local time with its zone (`2026-12-02 07:46:35 AEDT`), or `-`."""
    if timestamp is None:
        return "-"
    local = time.localtime(timestamp)
    return f"{time.strftime(layout, local)} {zone(local)}"


def zone(local: time.struct_time) -> str:
    """The zone of a local time as the system abbreviates it (`AEDT`, `UTC`; tzdata's own
    numeric ones, `-03` for America/Sao_Paulo, as they are), or as its UTC offset
    (`+11:00`) where the system gives a long name (Windows: `AUS Eastern Daylight Time`) or
    none: short, so the tables stay narrow."""
    name = local.tm_zone
    if name and " " not in name:
        return name
    sign = "-" if local.tm_gmtoff < 0 else "+"
    hours, seconds = divmod(abs(local.tm_gmtoff), 3600)
    return f"{sign}{hours:02d}:{seconds // 60:02d}"


def counted(count: int, noun: str) -> str:
    """`1 step`, `3 steps`: a count and its noun, plural (with an s) unless the count is 1."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def cut(text: str, width: int) -> str:
    """`text` on one line, at most `width` characters (an ellipsis marks a cut)."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _raw(value: msgspec.Raw) -> str:
    """Raw JSON as compact text; JSON `null` (no result yet) as `-`, as every unset field."""
    text = bytes(value).decode()
    return "-" if text.strip() == "null" else text


def show_job(job: Job, waiting: Waiting | None = None) -> None:
    """Every field of a job, one per line; after its info, why it waits (if it does)."""
    fields = [
        ("session_id", job.session_id),
        ("status", job.status.value),
        ("info", job.info or "-"),
        *_waiting_rows(waiting),
        ("job_type", job.job_type),
        ("job_sub_type", job.job_sub_type),
        ("username", job.username),
        ("batch_id", job.batch_id or "-"),
        ("created", when(job.created_timestamp)),
        ("started", when(job.started_timestamp)),
        ("finished", when(job.finished_timestamp)),
        ("attempt", str(job.attempt)),
        ("progress", "-" if job.progress is None else f"{job.progress:.0%}"),
        ("parent_session_id", job.parent_session_id or "-"),
        ("retry_of", job.retry_of or "-"),
        ("payload", _raw(job.payload)),
        ("result", _raw(job.result)),
    ]
    table(("field", "value"), fields)


def _waiting_rows(waiting: Waiting | None) -> list[tuple[str, str]]:
    """A fetch's `waiting` as rows of `show_job`: the reason, the sentence, and (when jobd
    says) the local time it may start and the jobs of its type ahead of it."""
    if waiting is None:
        return []
    rows = [("waiting", waiting.reason.value), ("why", waiting.message)]
    if waiting.ready_at is not None:
        rows.append(("ready_at", when(waiting.ready_at)))
    if waiting.ahead is not None:
        rows.append(("ahead", f"{counted(waiting.ahead, 'job')} of its type before it"))
    return rows


def job_json(job: Job) -> dict[str, Any]:
    """A job's fields as `--json` prints them, for a command to add its own to."""
    fields: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(job))
    return fields


def fetched_json(answer: JobResponse) -> Any:
    """A fetched job as `jobs show --json` prints it: its fields, plus `waiting` (the API's,
    as is) while it waits."""
    shown = job_json(answer.job)
    if answer.waiting is not None:
        shown["waiting"] = msgspec.to_builtins(answer.waiting)
    return shown


def list_table(listed: Sequence[Job], info_width: int = 60) -> None:
    """Jobs as a table, one a line; a long `info` is cut to `info_width` characters."""
    rows = [
        (
            job.session_id,
            when(job.created_timestamp),
            job.status.value,
            job.job_type,
            job.job_sub_type,
            job.username,
            job.batch_id or "-",
            cut(job.info or "-", info_width),
        )
        for job in listed
    ]
    table(("SESSION_ID", "CREATED", "STATUS", "TYPE", "SUB_TYPE", "USER", "BATCH", "INFO"), rows)


def launched_json(launched: LaunchJobResponse) -> dict[str, Any]:
    """A launch as `jobd launch --json` prints it: the API's body, plus `replayed`."""
    return {**msgspec.to_builtins(launched), "replayed": launched.replayed}


def show_launch(launched: LaunchJobResponse, as_json: bool) -> None:
    """One launch: its session id and batch id and, if it was replayed, that nothing new was
    launched."""
    if as_json:
        print_json(launched_json(launched))
        return
    rows = [("session_id", launched.session_id), ("batch_id", launched.batch_id or "-")]
    if launched.replayed:
        rows.append(("replayed", REPLAYED_NOTE))
    table(("field", "value"), rows)


def show_launched(launched: Sequence[LaunchJobResponse], as_json: bool) -> None:
    """The jobs a bulk launch started: a JSON list, or SESSION_ID and BATCH_ID columns (and
    REPLAYED, `yes` for each line an earlier launch with its key made, if any was)."""
    if as_json:
        print_json([launched_json(one) for one in launched])
    elif any(one.replayed for one in launched):
        rows = [(j.session_id, j.batch_id or "-", "yes" if j.replayed else "-") for j in launched]
        table(("SESSION_ID", "BATCH_ID", "REPLAYED"), rows)
    elif launched:
        table(("SESSION_ID", "BATCH_ID"), [(j.session_id, j.batch_id or "-") for j in launched])


def progress_line(summary: BatchSummary, width: int = 30) -> str:
    """`[#####---]  5/8 finished  SUCCEEDED 4  FAILED 1  PENDING 3` for a batch."""
    finished = summary.counts.get("SUCCEEDED", 0) + summary.counts.get("FAILED", 0)
    filled = width * finished // summary.total if summary.total else 0
    counts = "  ".join(f"{status} {n}" for status, n in summary.counts.items() if n)
    state = "done" if summary.done else "finished"
    return f"[{'#' * filled}{'-' * (width - filled)}]  {finished}/{summary.total} {state}  {counts}"
