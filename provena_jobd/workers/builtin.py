"""jobd's built-in handlers: a faithful stand-in for Provena's registry, provenance, email and
report workers, with the registry and provenance store simulated in jobd's own database.

Each behaves as the reference's handler does (provena-job-api.md sections 2.4 and 7): the
register jobs mint an activity and launch the lodge step of their workflow; batch submit
launches one MODEL_RUN_PROV_LODGE job per record in a new batch. What they launch and record
is committed only with their success (see `JobContext`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import JobFailed
from ..models import JobSubType, JobType
from ..queue.files import files_for
from .handlers import Handler, JobContext, Payload, Result, wake_up
from .mail import send_email_handler
from .reports import report_handler

if TYPE_CHECKING:
    from ..config import Settings
    from ..queue.store import JobStore

BATCH_DISTRIBUTED = "Successfully distributed batch jobs to queue."


async def register_create_activity(context: JobContext, payload: Payload) -> Result:
    """Mint a Create activity for a new item and launch the lodge of its provenance."""
    activity_id = context.record("CREATE_ACTIVITY", payload)
    lodge = await context.launch(
        JobType.PROV_LODGE,
        JobSubType.LODGE_CREATE_ACTIVITY,
        {
            "created_item_id": payload["created_item_id"],
            "creation_activity_id": activity_id,
            "linked_person_id": payload["linked_person_id"],
            "created_item_subtype": payload["created_item_subtype"],
        },
    )
    return {"creation_activity_id": activity_id, "lodge_session_id": lodge.session_id}


async def register_version_activity(context: JobContext, payload: Payload) -> Result:
    """Mint a Version activity and launch the lodge of its provenance."""
    activity_id = context.record("VERSION_ACTIVITY", payload)
    lodge = await context.launch(
        JobType.PROV_LODGE,
        JobSubType.LODGE_VERSION_ACTIVITY,
        {
            "from_version_id": payload["from_version_id"],
            "to_version_id": payload["to_version_id"],
            "version_activity_id": activity_id,
            "linked_person_id": payload["linked_person_id"],
            "item_subtype": payload["item_subtype"],
        },
    )
    return {"version_activity_id": activity_id, "lodge_session_id": lodge.session_id}


async def lodge_create_activity(context: JobContext, payload: Payload) -> Result:
    """Lodge a Create activity's provenance."""
    context.record("PROV_CREATE_ACTIVITY", payload)
    return {}


async def lodge_version_activity(context: JobContext, payload: Payload) -> Result:
    """Lodge a Version activity's provenance."""
    context.record("PROV_VERSION_ACTIVITY", payload)
    return {}


def _provenance_record(record_id: str, record: Payload) -> Result:
    """The reference's ProvenanceRecordInfo: the record, its id and its PROV document."""
    prov = {"entity": {record_id: {"prov:type": "ModelRun"}}, "jobd:simulated": True}
    return {"record": {"id": record_id, "prov_json": str(prov), "record": record}}


async def model_run_prov_lodge(context: JobContext, payload: Payload) -> Result:
    """Register a model run and lodge its provenance."""
    record_id = context.record("MODEL_RUN", payload["record"])
    return _provenance_record(record_id, payload["record"])


async def model_run_lodge_only(context: JobContext, payload: Payload) -> Result:
    """Lodge provenance for an existing model run record."""
    record_id = payload["model_run_record_id"]
    context.record("PROV_MODEL_RUN", {"model_run_record_id": record_id, **payload["record"]})
    return _provenance_record(record_id, payload["record"])


async def model_run_update(context: JobContext, payload: Payload) -> Result:
    """Replace a model run record and re-lodge it."""
    record_id = payload["model_run_record_id"]
    context.record(
        "MODEL_RUN_UPDATE",
        {
            "model_run_record_id": record_id,
            "reason": payload["reason"],
            **payload["updated_record"],
        },
    )
    return _provenance_record(record_id, payload["updated_record"])


async def model_run_update_lodge_only(context: JobContext, payload: Payload) -> Result:
    """Re-lodge an updated model run's provenance."""
    context.record(
        "PROV_MODEL_RUN_UPDATE",
        {"model_run_record_id": payload["model_run_record_id"], **payload["updated_record"]},
    )
    return {}


async def model_run_batch_submit(context: JobContext, payload: Payload) -> Result:
    """Launch one MODEL_RUN_PROV_LODGE per record as a new batch (the parent is not in it)."""
    records = payload["records"]
    if not records:
        raise JobFailed("the batch has no records to register")
    batch_id: str | None = None
    for index, record in enumerate(records):
        child = {"record": record, "revalidate": True, "user_info": payload["user_info"]}
        response = await context.launch(
            JobType.PROV_LODGE,
            JobSubType.MODEL_RUN_PROV_LODGE,
            child,
            request_batch_id=index == 0,
            add_to_batch=batch_id,
        )
        batch_id = response.batch_id
        if index % 100 == 99:
            await context.progress(
                f"Distributed {index + 1} of {len(records)} records.", (index + 1) / len(records)
            )
    context.info = BATCH_DISTRIBUTED
    assert batch_id is not None
    return {"batch_id": batch_id}


def builtin_handlers(settings: Settings, store: JobStore) -> dict[str, Handler]:
    """Every reference sub type's built-in handler."""
    return {
        JobSubType.PROV_LODGE_WAKE_UP: wake_up,
        JobSubType.REGISTRY_WAKE_UP: wake_up,
        JobSubType.EMAIL_WAKE_UP: wake_up,
        JobSubType.REGISTER_CREATE_ACTIVITY: register_create_activity,
        JobSubType.REGISTER_VERSION_ACTIVITY: register_version_activity,
        JobSubType.LODGE_CREATE_ACTIVITY: lodge_create_activity,
        JobSubType.LODGE_VERSION_ACTIVITY: lodge_version_activity,
        JobSubType.MODEL_RUN_PROV_LODGE: model_run_prov_lodge,
        JobSubType.MODEL_RUN_LODGE_ONLY: model_run_lodge_only,
        JobSubType.MODEL_RUN_UPDATE: model_run_update,
        JobSubType.MODEL_RUN_UPDATE_LODGE_ONLY: model_run_update_lodge_only,
        JobSubType.MODEL_RUN_BATCH_SUBMIT: model_run_batch_submit,
        JobSubType.SEND_EMAIL: send_email_handler(settings.email),
        JobSubType.GENERATE_REPORT: report_handler(
            settings.reports, store, files_for(store, settings.reports.folder)
        ),
    }
