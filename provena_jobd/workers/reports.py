"""GENERATE_REPORT: a study close-out report (.docx) of a study or model run, downloadable from
jobd through a signed link for a limited time.

As the reference (prov-api `helpers/generate_report_helpers.py`), the item must be a STUDY or a
MODEL_RUN that exists in the registry, here jobd's simulated one: a model run lodged by
MODEL_RUN_PROV_LODGE, or an item whose creation REGISTER_CREATE_ACTIVITY registered. The
report lists the model runs (the item's, or the study's) and their outputs, and what lies
`depth` hops upstream: their input datasets (1), the runs that generated those (2) and the
inputs of those runs (3).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from .. import coercion
from ..config import ReportSettings
from ..errors import JobFailed
from ..payloads import GenerateReportPayload, ItemSubType
from ..queue.files import Files
from .handlers import Handler, JobContext, Payload, Result
from .report_document import Node, ReportContent, write_docx

if TYPE_CHECKING:
    from ..queue.store import JobStore, NewRecord

SIGNING_SECRET = "report-links"
RECORDS_PER_ITEM = 1000
SUPPORTED = (ItemSubType.MODEL_RUN, ItemSubType.STUDY)
# The reference's texts (generate_report_helpers.validate_node_id, prov_jobs.py).
FAILED = "An error occurred while attempting to generate report. Error: {error}."
UNSUPPORTED = (
    "Unsupported item subtype for validation. Received subtype {subtype}, supported: "
    + ",".join(f"ItemSubType.{s.value}" for s in SUPPORTED)
)
INVALID = "Validation error with provided {subtype}: {reason}"


def sign(key: str, name: str, expires: int) -> str:
    """The signature that makes a report link valid until `expires`."""
    return hmac.new(key.encode(), f"{name}:{expires}".encode(), hashlib.sha256).hexdigest()


def link_is_valid(key: str, name: str, expires: int, signature: str, now: float) -> bool:
    """True for an unexpired link that jobd signed."""
    return now < expires and hmac.compare_digest(sign(key, name, expires), signature)


class SimulatedRegistry:
    """The items jobd's built-in handlers registered, looked up as the report needs them."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    async def item(self, item_id: str) -> tuple[ItemSubType, NewRecord | None] | None:
        """The sub type of an item and its model run record (for a model run), or None."""
        for record in await self.store.records_mentioning(item_id, RECORDS_PER_ITEM):
            if record.kind == "MODEL_RUN" and record.record_id == item_id:
                return ItemSubType.MODEL_RUN, record
            if record.kind == "CREATE_ACTIVITY" and record.data.get("created_item_id") == item_id:
                subtype = record.data.get("created_item_subtype")
                if isinstance(subtype, str) and subtype in ItemSubType.__members__:
                    return ItemSubType(subtype), None
        return None

    async def model_runs(
        self, predicate: Callable[[dict[str, Any]], bool], mentioning: str
    ) -> list[NewRecord]:
        """Model run records mentioning `mentioning` for which `predicate(data)` holds."""
        records = await self.store.records_mentioning(mentioning, RECORDS_PER_ITEM)
        return [r for r in records if r.kind == "MODEL_RUN" and predicate(r.data)]


def _dataset_ids(data: dict[str, Any], side: str) -> list[str]:
    """The dataset ids a model run record names as its `inputs` or `outputs`."""
    entries = data.get(side)
    if not isinstance(entries, list):
        return []
    return [str(e["dataset_id"]) for e in entries if isinstance(e, dict) and "dataset_id" in e]


def _produced(dataset: str) -> Callable[[dict[str, Any]], bool]:
    """True for a model run record that lists `dataset` among its outputs."""
    return lambda data: dataset in _dataset_ids(data, "outputs")


def _run_node(record: NewRecord) -> Node:
    name = record.data.get("display_name")
    return Node("Model Run", str(name) if name else record.record_id, record.record_id)


async def collect(registry: SimulatedRegistry, request: GenerateReportPayload) -> ReportContent:
    """Validate the item as the reference does, then gather what the report lists."""
    subtype = request.item_subtype
    if subtype not in SUPPORTED:
        raise JobFailed(FAILED.format(error=UNSUPPORTED.format(subtype=subtype.value)))
    found = await registry.item(request.id)
    if found is None or found[0] != subtype:
        reason = (
            f"Failed to retrieve item with details: no {subtype.value} with id {request.id} "
            "in jobd's registry."
        )
        raise JobFailed(FAILED.format(error=INVALID.format(subtype=subtype.value, reason=reason)))
    _, own_record = found
    if own_record is not None:
        runs = [own_record]
        origin = _run_node(own_record)
    else:  # a study: its model runs name it as their study_id
        runs = await registry.model_runs(lambda d: d.get("study_id") == request.id, request.id)
        origin = Node("Study", request.id, request.id)
    content = ReportContent(origin=origin, records=[])
    for run in runs:
        content.add_run(_run_node(run), run)
        for dataset in _dataset_ids(run.data, "outputs"):
            content.add_output(Node("Dataset", dataset, dataset))
    # `depth` hops upstream in the provenance graph, as the reference's upstream query:
    # a model run used its inputs (odd hops); a dataset was generated by a run (even hops).
    frontier, datasets = runs, []
    for hop in range(1, request.depth + 1):
        if hop % 2:
            datasets = [d for run in frontier for d in _dataset_ids(run.data, "inputs")]
            for dataset in datasets:
                content.add_input(Node("Dataset", dataset, dataset))
        else:
            producers = [p for d in datasets for p in await registry.model_runs(_produced(d), d)]
            frontier = [p for p in producers if content.add_run(_run_node(p), p)]
    return content


def report_handler(settings: ReportSettings, store: JobStore, files: Files) -> Handler:
    """A handler that keeps reports in `files` (the reports folder, or the database)."""
    registry = SimulatedRegistry(store)

    async def generate_report(context: JobContext, payload: Payload) -> Result:
        """Write the report and return a signed, expiring link to it."""
        # Checked at launch; converted here for the coerced values ("depth": "2" is 2).
        request = coercion.convert(payload, GenerateReportPayload)
        content = await collect(registry, request)
        name = f"{uuid.uuid4().hex}.docx"
        document = io.BytesIO()
        # python-docx is synchronous; a thread keeps the event loop free while it writes.
        await anyio.to_thread.run_sync(write_docx, content, document)
        await files.put(name, document.getvalue(), context.clock.now())
        expires = int(context.clock.now() + settings.url_ttl_s)
        key = await store.secret(SIGNING_SECRET)
        query = f"expires={expires}&signature={sign(key, name, expires)}"
        return {"report_url": f"{context.public_url}/reports/{name}?{query}"}

    return generate_report
