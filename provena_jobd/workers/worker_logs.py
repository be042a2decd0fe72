"""The log lines that say a worker started or stopped, naming it: in the text, and for
`--log-format json` in the fields `action`, `job_type` and `worker_id` (and a process's `pid`).

Each takes the logger of the pool that logs it, so the lines keep their logger's name.
"""

from __future__ import annotations

import logging


def log_worker(log: logging.Logger, job_type: str, worker_id: str, event: str) -> None:
    """An in-process worker `starting` or `stopped` (`action`: `worker_<event>`)."""
    log.info(
        "%s worker %s %s",
        job_type,
        worker_id,
        event,
        extra={"action": f"worker_{event}", "job_type": job_type, "worker_id": worker_id},
    )


def process_started(log: logging.Logger, job_type: str, worker_id: str, pid: int) -> None:
    """A worker process a pool started (`action`: `worker_process_started`)."""
    log.info(
        "%s worker process %d (%s) started",
        job_type,
        pid,
        worker_id,
        extra={
            "action": "worker_process_started",
            "job_type": job_type,
            "worker_id": worker_id,
            "pid": pid,
        },
    )


def process_exited(
    log: logging.Logger, level: int, job_type: str, worker_id: str, pid: int, how: str, code: int
) -> None:
    """A worker process that ended, not as a failed start; `how` says how (its exit status,
    the jobs it still held) (`action`: `worker_process_exited`, with `exit_code`)."""
    log.log(
        level,
        "%s worker process %d (%s) %s",
        job_type,
        pid,
        worker_id,
        how,
        extra={
            "action": "worker_process_exited",
            "job_type": job_type,
            "worker_id": worker_id,
            "pid": pid,
            "exit_code": code,
        },
    )
