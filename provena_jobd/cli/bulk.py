"""`jobd launch --payloads FILE`: many jobs of one sub type in one call.

The file holds one JSON object per line (JSON Lines; blank lines are skipped). Every line is
read and checked before anything is launched, so a typo in line 900 launches nothing. Jobs
are launched in file order, one request each over one connection; if jobd refuses one, the
lines before it stay launched, the rest are not, and the error names the line.

With an idempotency key, line N is launched with the key `KEY-N`: running the same file
again with the same key launches only the lines that were not launched yet.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import JobdError
from .output import counted

if TYPE_CHECKING:
    from ..client import JobdClient
    from ..models import LaunchJobResponse


class PartlyLaunched(JobdError):
    """jobd refused a line: the lines before it were launched (`launched`), the rest not."""

    def __init__(self, message: str, launched: list[LaunchJobResponse]) -> None:
        super().__init__(message)
        self.launched = launched


@dataclass(frozen=True)
class Payload:
    """One payload of a payloads file, with the line it came from."""

    line: int
    value: dict[str, Any]


def read_payloads(name: str) -> list[Payload]:
    """Every payload of a JSON Lines file (`-`: stdin); a bad line is a usage error."""
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text()
    except OSError as exc:
        message = f"cannot read {name}: {exc.strerror}"
        raise click.BadParameter(message, param_hint="--payloads") from None
    payloads = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise click.BadParameter(
                f"line {number}: not valid JSON: {exc.msg}", param_hint="--payloads"
            ) from None
        if not isinstance(value, dict):
            raise click.BadParameter(
                f"line {number}: a payload must be a JSON object", param_hint="--payloads"
            )
        payloads.append(Payload(number, value))
    if not payloads:
        raise click.BadParameter(f"{name} holds no payload", param_hint="--payloads")
    return payloads


def line_key(key: str | None, line: int) -> str | None:
    """The idempotency key of one line of a payloads file launched with `key`."""
    return None if key is None else f"{key}-{line}"


async def launch_all(
    client: JobdClient,
    job_type: str,
    sub_type: str,
    payloads: list[Payload],
    *,
    username: str | None,
    new_batch: bool,
    batch_id: str | None,
    idempotency_key: str | None = None,
    delay_s: float | None = None,
) -> list[LaunchJobResponse]:
    """Launch one job per payload, in order; with `new_batch` all of them in one new batch."""
    launched: list[LaunchJobResponse] = []
    for payload in payloads:
        first_of_new_batch = new_batch and not launched
        try:
            answer = await client.launch(
                job_type,
                sub_type,
                payload.value,
                username=username,
                new_batch=first_of_new_batch,
                batch_id=batch_id,
                idempotency_key=line_key(idempotency_key, payload.line),
                delay_s=delay_s,
            )
        except JobdError as exc:
            done = ""
            if launched:
                were = "was" if len(launched) == 1 else "were"
                done = f"; the {counted(len(launched), 'line')} before it {were} launched"
            raise PartlyLaunched(f"line {payload.line}: {exc.message}{done}", launched) from None
        if first_of_new_batch:
            batch_id = answer.batch_id
        launched.append(answer)
    return launched
