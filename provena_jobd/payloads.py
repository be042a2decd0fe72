"""Payload and result models per sub type: the reference's `JOB_TYPE_PAYLOAD_MAP` and
`JOB_TYPE_RESULT_MAP` (provena-job-api.md section 2.4).

Payloads are checked at launch and results when a handler returns. Records are Provena
models that jobd does not interpret, so they are plain JSON objects here. Sub types declared
in the config accept any JSON object.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

import msgspec

from . import coercion
from .errors import PayloadInvalid
from .models import JobSubType

JsonObject = dict[str, Any]


class WakeUpPayload(msgspec.Struct, kw_only=True):
    """Any `*_WAKE_UP` job."""

    reason: str | None = None


class ModelRunProvLodgePayload(msgspec.Struct, kw_only=True):
    """MODEL_RUN_PROV_LODGE: register a model run and lodge its provenance."""

    record: JsonObject
    revalidate: bool
    user_info: str


class ModelRunLodgeOnlyPayload(msgspec.Struct, kw_only=True):
    """MODEL_RUN_LODGE_ONLY: lodge provenance for an existing model run record."""

    model_run_record_id: str
    record: JsonObject
    revalidate: bool
    user_info: str


class ModelRunBatchSubmitPayload(msgspec.Struct, kw_only=True):
    """MODEL_RUN_BATCH_SUBMIT: one MODEL_RUN_PROV_LODGE job per record, as a batch."""

    records: list[JsonObject]
    user_info: str


class ModelRunUpdatePayload(msgspec.Struct, kw_only=True):
    """MODEL_RUN_UPDATE: replace a model run record and re-lodge it."""

    model_run_record_id: str
    updated_record: JsonObject
    reason: str
    revalidate: bool
    user_info: str


class ModelRunUpdateLodgeOnlyPayload(msgspec.Struct, kw_only=True):
    """MODEL_RUN_UPDATE_LODGE_ONLY: re-lodge an updated model run."""

    model_run_record_id: str
    updated_record: JsonObject
    revalidate: bool
    user_info: str


class LodgeCreateActivityPayload(msgspec.Struct, kw_only=True):
    """LODGE_CREATE_ACTIVITY: lodge the provenance of an item's creation."""

    created_item_id: str
    creation_activity_id: str
    linked_person_id: str
    created_item_subtype: str


class LodgeVersionActivityPayload(msgspec.Struct, kw_only=True):
    """LODGE_VERSION_ACTIVITY: lodge the provenance of a new version."""

    from_version_id: str
    to_version_id: str
    version_activity_id: str
    linked_person_id: str
    item_subtype: str


class RegisterCreateActivityPayload(msgspec.Struct, kw_only=True):
    """REGISTER_CREATE_ACTIVITY: register the Create activity of a new item."""

    created_item_id: str
    created_item_subtype: str
    linked_person_id: str


class RegisterVersionActivityPayload(msgspec.Struct, kw_only=True):
    """REGISTER_VERSION_ACTIVITY: register the Version activity of a new version."""

    reason: str
    version_number: int
    from_version_id: str
    to_version_id: str
    linked_person_id: str
    item_subtype: str


class SendEmailPayload(msgspec.Struct, kw_only=True):
    """SEND_EMAIL."""

    email_to: str
    subject: str
    body: str
    reason: str


class ItemSubType(enum.StrEnum):
    """The reference's registry item sub types (ProvenaInterfaces.RegistryModels)."""

    WORKFLOW_RUN = "WORKFLOW_RUN"
    MODEL_RUN = "MODEL_RUN"
    STUDY = "STUDY"
    CREATE = "CREATE"
    VERSION = "VERSION"
    PERSON = "PERSON"
    ORGANISATION = "ORGANISATION"
    SOFTWARE = "SOFTWARE"
    MODEL = "MODEL"
    WORKFLOW_TEMPLATE = "WORKFLOW_TEMPLATE"
    MODEL_RUN_WORKFLOW_TEMPLATE = "MODEL_RUN_WORKFLOW_TEMPLATE"
    DATASET = "DATASET"
    DATASET_TEMPLATE = "DATASET_TEMPLATE"


class GenerateReportPayload(msgspec.Struct, kw_only=True):
    """GENERATE_REPORT: a report of a study or model run, `depth` model runs upstream.

    The item must be a STUDY or MODEL_RUN that the registry knows (in jobd, one registered
    by REGISTER_CREATE_ACTIVITY, as the example above does).
    """

    id: str
    item_subtype: ItemSubType
    depth: Annotated[int, msgspec.Meta(ge=1, le=3)]
    user_info: str


class EmptyResult(msgspec.Struct, kw_only=True):
    """`{}`."""


class RecordResult(msgspec.Struct, kw_only=True):
    """A lodged record (ProvenanceRecordInfo)."""

    record: JsonObject


class BatchResult(msgspec.Struct, kw_only=True):
    """The batch a batch submit created."""

    batch_id: str


class CreateActivityResult(msgspec.Struct, kw_only=True):
    """The Create activity and the job lodging it (the workflow's next step)."""

    creation_activity_id: str
    lodge_session_id: str


class VersionActivityResult(msgspec.Struct, kw_only=True):
    """The Version activity and the job lodging it (the workflow's next step)."""

    version_activity_id: str
    lodge_session_id: str


class ReportResult(msgspec.Struct, kw_only=True):
    """Where to download the report."""

    report_url: str


PAYLOAD_MODELS: dict[str, type[msgspec.Struct]] = {
    JobSubType.PROV_LODGE_WAKE_UP: WakeUpPayload,
    JobSubType.REGISTRY_WAKE_UP: WakeUpPayload,
    JobSubType.EMAIL_WAKE_UP: WakeUpPayload,
    JobSubType.MODEL_RUN_PROV_LODGE: ModelRunProvLodgePayload,
    JobSubType.MODEL_RUN_LODGE_ONLY: ModelRunLodgeOnlyPayload,
    JobSubType.MODEL_RUN_BATCH_SUBMIT: ModelRunBatchSubmitPayload,
    JobSubType.MODEL_RUN_UPDATE: ModelRunUpdatePayload,
    JobSubType.MODEL_RUN_UPDATE_LODGE_ONLY: ModelRunUpdateLodgeOnlyPayload,
    JobSubType.LODGE_CREATE_ACTIVITY: LodgeCreateActivityPayload,
    JobSubType.LODGE_VERSION_ACTIVITY: LodgeVersionActivityPayload,
    JobSubType.REGISTER_CREATE_ACTIVITY: RegisterCreateActivityPayload,
    JobSubType.REGISTER_VERSION_ACTIVITY: RegisterVersionActivityPayload,
    JobSubType.SEND_EMAIL: SendEmailPayload,
    JobSubType.GENERATE_REPORT: GenerateReportPayload,
}

RESULT_MODELS: dict[str, type[msgspec.Struct]] = {
    JobSubType.PROV_LODGE_WAKE_UP: EmptyResult,
    JobSubType.REGISTRY_WAKE_UP: EmptyResult,
    JobSubType.EMAIL_WAKE_UP: EmptyResult,
    JobSubType.MODEL_RUN_PROV_LODGE: RecordResult,
    JobSubType.MODEL_RUN_LODGE_ONLY: RecordResult,
    JobSubType.MODEL_RUN_BATCH_SUBMIT: BatchResult,
    JobSubType.MODEL_RUN_UPDATE: RecordResult,
    JobSubType.MODEL_RUN_UPDATE_LODGE_ONLY: EmptyResult,
    JobSubType.LODGE_CREATE_ACTIVITY: EmptyResult,
    JobSubType.LODGE_VERSION_ACTIVITY: EmptyResult,
    JobSubType.REGISTER_CREATE_ACTIVITY: CreateActivityResult,
    JobSubType.REGISTER_VERSION_ACTIVITY: VersionActivityResult,
    JobSubType.SEND_EMAIL: EmptyResult,
    JobSubType.GENERATE_REPORT: ReportResult,
}


# The reference's model names, which its error texts show ("1 validation error for ...").
REFERENCE_NAMES: dict[type[msgspec.Struct], str] = {
    WakeUpPayload: "WakeUpPayload",
    ModelRunProvLodgePayload: "ProvLodgeModelRunPayload",
    ModelRunLodgeOnlyPayload: "ProvLodgeModelRunLodgeOnlyPayload",
    ModelRunBatchSubmitPayload: "ProvLodgeBatchSubmitPayload",
    ModelRunUpdatePayload: "ProvLodgeUpdatePayload",
    ModelRunUpdateLodgeOnlyPayload: "ProvLodgeUpdateLodgeOnlyPayload",
    LodgeCreateActivityPayload: "ProvLodgeCreationPayload",
    LodgeVersionActivityPayload: "ProvLodgeVersionPayload",
    RegisterCreateActivityPayload: "RegistryRegisterCreateActivityPayload",
    RegisterVersionActivityPayload: "RegistryRegisterVersionActivityPayload",
    SendEmailPayload: "EmailSendEmailPayload",
    GenerateReportPayload: "ReportGeneratePayload",
}


def check(models: dict[str, type[msgspec.Struct]], sub_type: str, value: JsonObject) -> None:
    """Validate a payload or result against its sub type's model (unknown sub types: any),
    coercing as the reference's pydantic v1 models do; the error lists every problem."""
    model = models.get(sub_type)
    if model is None:
        return
    try:
        coercion.convert(value, model)
    except coercion.Invalid as exc:
        name = REFERENCE_NAMES.get(model, model.__name__)
        raise PayloadInvalid(coercion.as_text(name, exc.problems)) from None
