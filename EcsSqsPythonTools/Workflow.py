"""Payload parsing, as Provena's `EcsSqsPythonTools.Workflow` offers it."""

# Provena's worker code imports its job models through this module (`import *`).
from ProvenaInterfaces.AsyncJobModels import *  # noqa: F403
from ProvenaInterfaces.AsyncJobModels import JOB_TYPE_PAYLOAD_MAP, JobSnsPayload, JobSubType
from pydantic import BaseModel

from EcsSqsPythonTools.Types import CallbackResponse as CallbackResponse


def parse_job_specific_payload(payload: JobSnsPayload, job_sub_type: JobSubType) -> BaseModel:
    """The job's payload parsed into its sub type's model (raises if it does not fit)."""
    desired_model = JOB_TYPE_PAYLOAD_MAP[job_sub_type]
    return desired_model.parse_obj(payload.payload)
