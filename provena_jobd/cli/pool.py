"""`jobd pool`: each job type's pool, its workers by state and its counters."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .common import client_command
from .output import print_json, table

if TYPE_CHECKING:
    from ..client import JobdClient

HEADERS = (
    "JOB_TYPE",
    "PROVISIONING",
    "IDLE",
    "BUSY",
    "RUNNING",
    "WAITING",
    "COLD_STARTS",
    "FINISHED",
    "MAX_WORKERS",
)


@click.command()
@client_command
async def pool(client: JobdClient, as_json: bool) -> int:
    """Show each job type's pool: workers by state, jobs running and waiting, cold starts."""
    pools = await client.pool()
    if as_json:
        print_json(pools)
        return 0
    rows = [
        (
            snapshot.job_type,
            str(snapshot.workers.get("provisioning", 0)),
            str(snapshot.workers.get("idle", 0)),
            str(snapshot.workers.get("busy", 0)),
            f"{snapshot.running_jobs}",
            f"{snapshot.waiting}",
            f"{snapshot.cold_starts}",
            f"{snapshot.jobs_finished}",
            f"{snapshot.settings.max_workers}",
        )
        for snapshot in pools.pools
    ]
    table(HEADERS, rows)
    outside = [(s.job_type, w) for s in pools.pools for w in s.processes]
    if outside:  # workers outside jobd: the processes it started, with their pids
        click.echo()
        process_rows = [
            (job_type, w.worker_id, str(w.pid or "-"), w.state, str(w.jobs))
            for job_type, w in outside
        ]
        table(("JOB_TYPE", "WORKER", "PID", "STATE", "JOBS"), process_rows)
    for snapshot in pools.pools:
        if snapshot.start_backoff is not None:  # jobd phrases it, as the Pools page shows it
            click.echo(f"\n{snapshot.job_type}: {snapshot.start_backoff.message}")
    return 0
