"""The worker's main loop, as Provena's `EcsSqsPythonTools.JobRunner`, claiming from jobd.

Same behaviour as the reference: claim a job (DEQUEUED), mark it IN_PROGRESS with the
reference's info, call the callback, write its SUCCEEDED/FAILED response (an unhandled
exception becomes FAILED with the reference's text), and exit once `idle_timeout` seconds
pass without work. Instead of sleeping between SQS polls, the claim long-polls jobd.
"""

from __future__ import annotations

import time
from datetime import datetime

from ProvenaInterfaces.AsyncJobModels import JobSnsPayload, JobStatus

from EcsSqsPythonTools.bridge import JobdBridge
from EcsSqsPythonTools.Settings import JobBaseSettings
from EcsSqsPythonTools.Types import CallbackFunc, CallbackResponse
from provena_jobd.client import Conflict, ConnectionFailed
from provena_jobd.models import INFO_IN_PROGRESS, INFO_UNHANDLED
from provena_jobd.worker_client import ClaimedWork
from provena_jobd.worker_protocol import MAX_CLAIM_WAIT_S

# How many jobs to claim per poll (the reference's JOBS_PER_POLL)
JOBS_PER_POLL = 1

# After jobd could not be reached, wait this long before asking again
RECONNECT_WAIT = 1.0

BAD_PAYLOAD = "Failed to parse the job into a JobSnsPayload, error: {error}."
BAD_STATUS = "Callback returned status {status}; a finished job is SUCCEEDED or FAILED."


def get_timestamp() -> float:
    """Now, in epoch seconds."""
    return datetime.now().timestamp()


def continue_consuming(last_consumed_stamp: float, settings: JobBaseSettings) -> bool:
    """True while less than `idle_timeout` seconds have passed since the last job."""
    return get_timestamp() - last_consumed_stamp < settings.idle_timeout


def run_job_loop(callback: CallbackFunc, settings: JobBaseSettings) -> None:
    """Claim and run jobs of `settings.job_type` until the worker has been idle long enough."""
    url = settings.jobd_url or settings.job_api_endpoint
    jobd = JobdBridge(url, settings.jobd_token, settings.jobd_worker_id)
    try:
        last_consumed_stamp = get_timestamp()
        while continue_consuming(last_consumed_stamp, settings):
            idle_left = settings.idle_timeout - (get_timestamp() - last_consumed_stamp)
            wait_s = max(0.0, min(idle_left, MAX_CLAIM_WAIT_S))
            try:
                jobs = jobd.call(
                    jobd.client.claim(settings.job_type.value, n=JOBS_PER_POLL, wait_s=wait_s)
                )
            except ConnectionFailed as error:
                print(f"Could not reach jobd ({error}); trying again.")
                time.sleep(RECONNECT_WAIT)
                continue
            for work in jobs:
                print(f"Work found: {work.job_sub_type} job {work.session_id}.")
                run_one(jobd, work, callback, settings)
                last_consumed_stamp = get_timestamp()
    finally:
        jobd.close()


def run_one(
    jobd: JobdBridge, work: ClaimedWork, callback: CallbackFunc, settings: JobBaseSettings
) -> None:
    """One job's life: IN_PROGRESS, the callback under heartbeats, then its response."""
    try:
        payload = JobSnsPayload.parse_obj(
            {
                "session_id": work.session_id,
                "created_timestamp": work.created_timestamp,
                "username": work.username,
                "batch_id": work.batch_id,
                "payload": work.payload,
                "job_type": work.job_type,
                "job_sub_type": work.job_sub_type,
            }
        )
    except Exception as error:
        finish(jobd, work, CallbackResponse(JobStatus.FAILED, BAD_PAYLOAD.format(error=error)))
        return
    try:
        jobd.call(jobd.client.start(work, INFO_IN_PROGRESS))
    except Conflict as error:
        print(f"Job {work.session_id} moved on before it started: {error}")
        return
    print("Dispatching to work callback")
    with jobd.heartbeats(work):
        try:
            response = callback(payload, settings)
        except Exception as error:
            response = CallbackResponse(
                status=JobStatus.FAILED, info=INFO_UNHANDLED.format(error=error), result=None
            )
    finish(jobd, work, response)


def finish(jobd: JobdBridge, work: ClaimedWork, response: CallbackResponse) -> None:
    """Write the callback's response; a refusal means another attempt holds the job now."""
    status = JobStatus(response.status)
    info, result = response.info, response.result
    if status not in (JobStatus.SUCCEEDED, JobStatus.FAILED):
        status, info, result = JobStatus.FAILED, BAD_STATUS.format(status=status.value), None
    try:
        job = jobd.call(
            jobd.client.finish(
                work,
                "SUCCEEDED" if status is JobStatus.SUCCEEDED else "FAILED",
                info=info,
                result=result,
            )
        )
    except Conflict as error:
        print(f"Job {work.session_id} was not ours any more: {error}")
        return
    print(f"Job {work.session_id} ended {job.status.value}.")


def ecs_job_worker(worker_callback: CallbackFunc) -> None:
    """Main entry point of a worker: run `worker_callback` for each job of this job type.

    Sub type dispatching is the callback's own.
    """
    print("Worker launched successfully")
    settings = JobBaseSettings()  # type: ignore[call-arg]  # read from the environment
    run_job_loop(callback=worker_callback, settings=settings)
    print("Completed job loop - shutting down exit 0")
