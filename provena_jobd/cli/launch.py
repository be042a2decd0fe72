"""`jobd launch TYPE SUB_TYPE`: one job, or many with `--payloads`, optionally waited for."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import JobdError
from ..launch_options import DELAY_RULE, KEY_RULE, NO_SUCH_BATCH, is_valid_key
from . import bulk
from .common import (
    client_command,
    finished_status,
    given_on_command_line,
    wait_and_show,
    with_wait,
)
from .output import REPLAYED_NOTE, counted, list_table, show, show_launch, show_launched

if TYPE_CHECKING:
    from ..client import JobdClient
    from ..models import LaunchJobResponse


def _read_payload(context: click.Context, parameter: click.Parameter, value: str) -> dict[str, Any]:
    """`--payload`: JSON text, `@file` or `@-` (stdin); it must be a JSON object."""
    text = value
    if value.startswith("@"):
        name = value[1:]
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text()
        except OSError as exc:
            raise click.BadParameter(f"cannot read {name}: {exc.strerror}") from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise click.BadParameter("the payload must be a JSON object")
    return payload


def _check_key(context: click.Context, parameter: click.Parameter, value: str | None) -> str | None:
    """`--idempotency-key`: checked here as jobd checks it, so a bad key launches nothing."""
    if value is not None and not is_valid_key(value):
        raise click.BadParameter(KEY_RULE)
    return value


def _read_delay(
    context: click.Context, parameter: click.Parameter, value: str | None
) -> float | None:
    """`--delay`: a finite number of seconds, 0 or more ("nan" and "inf" parse as floats)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise click.BadParameter(f"{DELAY_RULE}, not {value!r}")
    return seconds


@contextlib.contextmanager
def _batch_named_as_typed(batch_id: str | None) -> Iterator[None]:
    """jobd refuses an unknown batch in the words of its API field (`add_to_batch ...`);
    say it with the option the user typed, `--batch`."""
    try:
        yield
    except JobdError as exc:
        api_words = None if batch_id is None else NO_SUCH_BATCH.format(batch_id=batch_id)
        if api_words is None or api_words not in exc.message:
            raise
        option_words = f"--batch names no existing batch: {batch_id}."
        raise JobdError(exc.message.replace(api_words, option_words)) from None


def _launched_count(launched: list[LaunchJobResponse]) -> str:
    """`launched 3 jobs`, or `launched 1 job, replayed 2 (...)` where an earlier run with the
    same idempotency key had launched some lines."""
    replayed = sum(one.replayed for one in launched)
    made = len(launched) - replayed
    said = f"launched {counted(made, 'job')}"
    if replayed:
        said += f", replayed {replayed} (launched earlier with their idempotency keys)"
    return said


@click.command()
@click.argument("job_type")
@click.argument("sub_type")
@click.option(
    "--payload",
    default="{}",
    show_default=True,
    metavar="JSON|@FILE",
    callback=_read_payload,
    help="The job's payload: JSON text, @file, or @- for stdin.",
)
@click.option(
    "--payloads",
    "payloads_file",
    metavar="FILE",
    help="Launch one job per line of FILE (JSON Lines: one payload object a line; - for "
    "stdin), in order; every line is checked before any is launched.",
)
@click.option(
    "--batch",
    metavar="new|ID",
    help="'new' starts a batch with this job (with --payloads: with all of them); an ID adds "
    "to that batch.",
)
@click.option(
    "--username",
    help="Launch for this user instead of yourself. Anyone who may launch (the read and "
    "write roles) may, unless jobd's [auth] restrict_on_behalf is on: then only the admin "
    "role and the names in [auth] service_accounts.",
)
@click.option(
    "--idempotency-key",
    metavar="KEY",
    callback=_check_key,
    help="Launch at most once for KEY: the same launch again (same KEY, request and user) "
    "prints the first job with a 'replayed' line (with --json, \"replayed\": true) and "
    "launches nothing; the same KEY with another request is refused. jobd keeps a key for "
    "a day ([queue] idempotency_ttl_s). With --payloads, line N uses KEY-N, so running the "
    "file again launches only the missing lines.",
)
@click.option(
    "--delay",
    "delay_s",
    metavar="SECONDS",
    callback=_read_delay,
    help="Run the job (with --payloads: each job) no earlier than SECONDS from now; it "
    "waits PENDING until then.",
)
@with_wait
@client_command
async def launch(
    client: JobdClient,
    job_type: str,
    sub_type: str,
    payload: dict[str, Any],
    payloads_file: str | None,
    batch: str | None,
    username: str | None,
    idempotency_key: str | None,
    delay_s: float | None,
    wait: bool,
    timeout_s: float | None,
    as_json: bool,
) -> int:
    """Launch a job of JOB_TYPE and SUB_TYPE; print its session id (and batch id).

    With --payloads, launch many and print one line per job (with --json, a JSON list); with
    --wait, wait for all of them and exit 1 if any FAILED.
    """
    new_batch = batch == "new"
    batch_id = None if batch is None or new_batch else batch
    if payloads_file is not None:
        if given_on_command_line("payload"):
            raise click.UsageError("give --payload or --payloads, not both")
        many = bulk.read_payloads(payloads_file)
        last_key = bulk.line_key(idempotency_key, many[-1].line)
        if last_key is not None and not is_valid_key(last_key):
            message = f"{KEY_RULE}, with -N added for line N of --payloads"
            raise click.BadParameter(message, param_hint="'--idempotency-key'")
        with _batch_named_as_typed(batch_id):
            try:
                launched = await bulk.launch_all(
                    client, job_type, sub_type, many,
                    username=username, new_batch=new_batch, batch_id=batch_id,
                    idempotency_key=idempotency_key, delay_s=delay_s,
                )  # fmt: skip
            except bulk.PartlyLaunched as exc:
                show_launched(exc.launched, as_json)  # what was launched, before the error
                raise
        if not wait:
            show_launched(launched, as_json)
            return 0
        if not as_json:
            them = "it" if len(launched) == 1 else "them"
            click.echo(f"{_launched_count(launched)}; waiting for {them} to finish", err=True)
        try:
            async with asyncio.timeout(timeout_s):  # for all of them together
                jobs = [await client.wait(one.session_id) for one in launched]
        except TimeoutError:
            count = len(launched)
            unfinished = "the job did not" if count == 1 else f"the {count} jobs did not all"
            message = f"{unfinished} finish within {timeout_s:g} s"
            raise JobdError(message) from None
        show(jobs, as_json, list_table)
        return max(finished_status(job) for job in jobs)

    with _batch_named_as_typed(batch_id):
        launched_one = await client.launch(
            job_type, sub_type, payload,
            username=username, new_batch=new_batch, batch_id=batch_id,
            idempotency_key=idempotency_key, delay_s=delay_s,
        )  # fmt: skip
    if wait:
        if launched_one.replayed and not as_json:
            click.echo(f"replayed: {REPLAYED_NOTE}", err=True)
        started = "replayed" if launched_one.replayed else "launched"
        return await wait_and_show(client, started, launched_one.session_id, timeout_s, as_json)
    show_launch(launched_one, as_json)
    return 0


__all__ = ["launch"]
