import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import cast

from helpers.job_api_helpers import submit_lodge_create_activity
from ProvenaInterfaces.AsyncJobModels import *

from EcsSqsPythonTools.Settings import JobBaseSettings
from EcsSqsPythonTools.Types import *
from EcsSqsPythonTools.Workflow import parse_job_specific_payload

RegistryJobHandler = CallbackFunc


def generate_failed_job(error: str) -> CallbackResponse:
    return CallbackResponse(status=JobStatus.FAILED, info=f"Job failed, err: {error}.", result=None)


def wake_up_handler(payload: JobSnsPayload, settings: JobBaseSettings) -> CallbackResponse:
    wake_up = cast(
        WakeUpPayload,
        parse_job_specific_payload(payload=payload, job_sub_type=JobSubType.REGISTRY_WAKE_UP),
    )
    if wake_up.reason == "raise":
        raise RuntimeError("the registry is unreachable")
    if wake_up.reason == "stall":
        # Stall the first time (the test kills this process); the next process succeeds.
        markers = Path(os.environ["TEST_MARKERS"])
        marker = markers / f"{payload.session_id}.started"
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            while True:
                time.sleep(0.05)
    print("Woke up successfully.")
    return CallbackResponse(status=JobStatus.SUCCEEDED, info=None, result=WakeUpResult().dict())


def create_activity_handler(payload: JobSnsPayload, settings: JobBaseSettings) -> CallbackResponse:
    print("Running registry register create activity handler.")
    try:
        create_payload = cast(
            RegistryRegisterCreateActivityPayload,
            parse_job_specific_payload(
                payload=payload,
                job_sub_type=JobSubType.REGISTER_CREATE_ACTIVITY,
            ),
        )
    except Exception as e:
        return generate_failed_job(error=f"Failed to parse job payload from the event. Error: {e}.")

    # Stands in for minting a handle and writing the registry item.
    handle = f"10378.1/{uuid.uuid4()}"

    # And spin off the lodge job, on the user's behalf, through the Job API.
    lodge_session_id = asyncio.run(
        submit_lodge_create_activity(
            username=payload.username,
            payload=ProvLodgeCreationPayload(
                created_item_id=create_payload.created_item_id,
                creation_activity_id=handle,
                created_item_subtype=create_payload.created_item_subtype,
                linked_person_id=create_payload.linked_person_id,
            ),
            settings=settings,
        )
    )
    return CallbackResponse(
        status=JobStatus.SUCCEEDED,
        info=None,
        result=RegistryRegisterCreateActivityResult(
            creation_activity_id=handle, lodge_session_id=lodge_session_id
        ).dict(),
    )


REGISTRY_HANDLER_MAP: dict[JobSubType, RegistryJobHandler] = {
    JobSubType.REGISTRY_WAKE_UP: wake_up_handler,
    JobSubType.REGISTER_CREATE_ACTIVITY: create_activity_handler,
}


def job_dispatcher(payload: JobSnsPayload, settings: JobBaseSettings) -> CallbackResponse:
    print("Dispatching into handler.")
    handler = REGISTRY_HANDLER_MAP[payload.job_sub_type]
    print("Running dispatched function")
    return handler(payload, settings)
