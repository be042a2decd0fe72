"""GENERATE_REPORT against a real `jobd serve`: the reference's validation texts, and a Word
document behind a signed, expiring link, read back with python-docx."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import docx
import pytest

from provena_jobd.http.report_files import DOCX
from tests.e2e.test_jobs_end_to_end import USER_INFO, Api, Start

pytestmark = pytest.mark.acceptance
STUDY = "10378.1/study"
FAILED = "Job failed, err: An error occurred while attempting to generate report. Error: "


async def register(api: Api, item_id: str, subtype: str) -> None:
    """Create an item as registry-api does: REGISTER_CREATE_ACTIVITY."""
    payload = {"created_item_id": item_id, "created_item_subtype": subtype, "linked_person_id": "p"}
    job = await api.finished(
        (await api.launch("REGISTRY", "REGISTER_CREATE_ACTIVITY", payload))["session_id"]
    )
    assert job["status"] == "SUCCEEDED", job["info"]


async def lodge_model_run(
    api: Api, name: str, inputs: list[str], outputs: list[str], study: str | None = STUDY
) -> str:
    """Lodge a model run (of `study`) reading `inputs` and writing `outputs`; its id."""
    record = {
        "display_name": name,
        "description": f"{name}, for the report",
        "study_id": study,
        "inputs": [{"dataset_template_id": "t", "dataset_id": d} for d in inputs],
        "outputs": [{"dataset_template_id": "t", "dataset_id": d} for d in outputs],
        "annotations": {"rainfall": "high"},
    }
    payload = {"record": record, "revalidate": True, "user_info": USER_INFO}
    job = await api.finished(
        (await api.launch("PROV_LODGE", "MODEL_RUN_PROV_LODGE", payload))["session_id"]
    )
    assert job["status"] == "SUCCEEDED", job["info"]
    run_id: str = job["result"]["record"]["id"]
    return run_id


async def report(api: Api, item_id: str, subtype: str, depth: Any) -> dict[str, Any]:
    payload = {"id": item_id, "item_subtype": subtype, "depth": depth, "user_info": USER_INFO}
    launched = await api.launch("REPORT", "GENERATE_REPORT", payload)
    job: dict[str, Any] = await api.finished(launched["session_id"])
    return job


async def download(api: Api, url: str) -> list[str]:
    """The report's text, paragraph by paragraph and cell by cell, as Word would show it."""
    async with api.session.get(url) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == DOCX
        document = docx.Document(io.BytesIO(await response.read()))
    lines = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text for cell in row.cells))
    return lines


def table(lines: list[str]) -> dict[str, str]:
    """The report's table: label -> cell text."""
    return dict(line.split(" | ", 1) for line in lines if " | " in line)


async def test_a_study_report_is_a_word_document(start: Start, tmp_path: Path) -> None:
    api = await start(f'[reports]\nfolder = "{tmp_path / "reports"}"\n')
    await register(api, STUDY, "STUDY")
    await lodge_model_run(
        api, "Upstream run", inputs=["10378.1/raw"], outputs=["10378.1/clean"], study=None
    )
    await lodge_model_run(api, "Study run", inputs=["10378.1/clean"], outputs=["10378.1/result"])
    job = await report(api, STUDY, "STUDY", depth="3")  # a string, as pydantic v1 accepts
    assert job["status"] == "SUCCEEDED", job["info"]
    url = job["result"]["report_url"]
    assert url.startswith(api.url + "/reports/") and ".docx?" in url
    lines = await download(api, url)
    text = "\n".join(lines)
    assert lines[0] == "Model Run Study Close Out Report"
    assert f"Report for Study: {STUDY}" in lines
    rows = table(lines)
    assert rows["Modelling Team"] == "<enter your team name here>"
    assert "10378.1/clean" in rows["Inputs"] and "10378.1/raw" in rows["Inputs"]
    assert "Study run" in rows["Model Runs"] and "Upstream run" in rows["Model Runs"]
    assert "10378.1/result" in rows["Outputs"]
    # Each run's record is readable text, not a Python repr.
    assert "display_name: Study run" in lines
    assert "inputs[0].dataset_id: 10378.1/clean" in lines
    assert "annotations.rainfall: high" in lines
    assert "{'" not in text and "[{" not in text
    # Fewer hops upstream reach less: the run that made the input (2), not its input (3).
    job = await report(api, STUDY, "STUDY", 2)
    rows = table(await download(api, job["result"]["report_url"]))
    assert "Upstream run" in rows["Model Runs"] and "10378.1/raw" not in rows["Inputs"]
    job = await report(api, STUDY, "STUDY", 1)
    rows = table(await download(api, job["result"]["report_url"]))
    assert "Upstream run" not in rows["Model Runs"] and "10378.1/clean" in rows["Inputs"]
    async with api.session.get(url.replace("signature=", "signature=0")) as response:
        assert response.status == 403


async def test_a_model_run_report(start: Start, tmp_path: Path) -> None:
    api = await start(f'[reports]\nfolder = "{tmp_path / "reports"}"\n')
    run_id = await lodge_model_run(api, "Lonely run", inputs=["10378.1/in"], outputs=[])
    job = await report(api, run_id, "MODEL_RUN", 1)
    assert job["status"] == "SUCCEEDED", job["info"]
    lines = await download(api, job["result"]["report_url"])
    assert "Report for Model Run: Lonely run" in lines


async def test_report_validation_fails_with_the_references_texts(start: Start) -> None:
    api = await start()
    await register(api, "10378.1/dataset", "DATASET")
    await register(api, "10378.1/model", "MODEL")
    job = await report(api, "10378.1/model", "MODEL", 1)
    assert (job["status"], job["info"]) == (
        "FAILED",
        FAILED + "Unsupported item subtype for validation. Received subtype MODEL, "
        "supported: ItemSubType.MODEL_RUN,ItemSubType.STUDY.",
    )
    for item_id in ("fake10.3456/7", "10378.1/dataset"):  # unknown, or not a study
        job = await report(api, item_id, "STUDY", 1)
        assert job["status"] == "FAILED"
        assert job["info"].startswith(FAILED + "Validation error with provided STUDY: ")
        assert item_id in job["info"]
