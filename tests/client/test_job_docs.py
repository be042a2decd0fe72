"""docs/jobs.md is generated from the payload and result models, and its examples work."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from provena_jobd.catalog import JobCatalog
from provena_jobd.client import job_result
from provena_jobd.jobdocs import render
from provena_jobd.payloads import RESULT_MODELS, check
from provena_jobd.testing import JobdTestServer

REPO = Path(__file__).resolve().parents[2]
REGENERATE = "python -m provena_jobd.jobdocs > docs/jobs.md"
LAUNCH = re.compile(r"^jobd launch (\w+) (\w+) --payload '([^']*)' --wait$", re.MULTILINE)


def test_docs_jobs_md_is_up_to_date() -> None:
    written = (REPO / "docs" / "jobs.md").read_text()
    assert written == render(), f"docs/jobs.md is out of date; regenerate it: {REGENERATE}"


def test_every_sub_type_has_a_section_and_one_example() -> None:
    page = render()
    examples = LAUNCH.findall(page)
    catalog = JobCatalog()
    assert sorted(sub_type for _, sub_type, _ in examples) == sorted(catalog.sub_types)
    for job_type, sub_type, _ in examples:
        assert f"\n### {sub_type}\n" in page
        assert catalog.job_type_of(sub_type) == job_type


async def test_every_example_launch_succeeds(jobd_server: JobdTestServer) -> None:
    for job_type, sub_type, payload_text in LAUNCH.findall(render()):
        launched = await jobd_server.client.launch(job_type, sub_type, json.loads(payload_text))
        job = await jobd_server.client.wait(launched.session_id, timeout_s=10, admin=True)
        assert job.status == "SUCCEEDED", (sub_type, job.info)
        check(RESULT_MODELS, sub_type, job_result(job))  # the result fields the page lists


@pytest.mark.parametrize("page", ["README.md", "docs/testing.md", "docs/cli.md", "docs/jobs.md"])
def test_links_stay_inside_the_repository(page: str) -> None:
    path = REPO / page
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", path.read_text()):
        if target.startswith(("http://", "https://")):
            assert page != "README.md", f"README links outside the repository: {target}"
            continue
        resolved = (path.parent / target).resolve()
        assert resolved.is_relative_to(REPO), f"{page} links outside the repository: {target}"
        assert resolved.exists(), f"{page} links to a missing file: {target}"
    assert "../shared" not in path.read_text()
