"""What the client commands say, in their own words: `--batch` (not the API's field), a hint
to use `--admin` for another user's job, counts in the singular, and `-` for a job's unset
result; run as subprocesses against a real jobd."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provena_jobd.client import BadRequest
from provena_jobd.identity import hash_token
from provena_jobd.testing import JobdServerFactory, JobdTestServer
from tests.client.handlers import JOB_TYPE, JOBS, STEP, gate
from tests.client.test_cli import fields_of, jobd, one_error_line

WAKE = ("EMAIL", "EMAIL_WAKE_UP")
NOT_AUTHORISED = "Not authorised to view this record."


async def test_an_unknown_batch_is_named_by_the_option_given(
    jobd_server: JobdTestServer, tmp_path: Path
) -> None:
    one = await jobd("launch", *WAKE, "--batch", "nosuch", url=jobd_server.url)
    one_error_line(one, "--batch names no existing batch: nosuch.")
    payloads = tmp_path / "p.jsonl"
    payloads.write_text("{}\n{}\n")
    many = await jobd(
        "launch", *WAKE, "--payloads", str(payloads), "--batch", "nosuch", url=jobd_server.url
    )
    one_error_line(many, "line 1: --batch names no existing batch: nosuch.")
    assert [job async for job in jobd_server.client.list_jobs()] == []
    # The API keeps its own words: its callers name the field.
    with pytest.raises(BadRequest) as refused:
        await jobd_server.client.launch(*WAKE, batch_id="nosuch")
    assert refused.value.detail == "add_to_batch names no existing batch: nosuch."


async def test_another_users_job_hints_at_admin_for_a_caller_who_may_use_it(
    jobd_server: JobdTestServer,
) -> None:
    theirs = (await jobd_server.client.launch(*WAKE, username="alice")).session_id
    await jobd_server.client.wait(theirs, timeout_s=10, admin=True)
    for command in (("jobs", "show"), ("jobs", "watch"), ("workflow",)):
        refused = await jobd(*command, theirs, url=jobd_server.url)
        hint = " ".join(["jobd", *command, "--admin", theirs])
        one_error_line(
            refused,
            f"{NOT_AUTHORISED} It is another user's job; you may read it on the admin route: "
            f"{hint}",
        )
        followed = await jobd(*hint.split()[1:], "--json", url=jobd_server.url)
        assert followed.status == 0, followed


async def test_no_admin_hint_for_a_caller_without_the_admin_roles(
    jobd_server_factory: JobdServerFactory,
) -> None:
    writer, plain = "jobd_writer-token", "jobd_plain-token"
    tokens = [
        {"sha256": hash_token(writer), "user": "svc", "roles": ["job-service-read",
                                                                 "job-service-write"]},
        {"sha256": hash_token(plain), "user": "bob", "roles": []},
    ]  # fmt: skip
    server = await jobd_server_factory(auth={"mode": "token", "tokens": tokens}, token=writer)
    theirs = (await server.client.launch(*WAKE, username="alice")).session_id
    refused = await jobd("jobs", "show", theirs, "--token", plain, url=server.url)
    one_error_line(refused, NOT_AUTHORISED)


async def test_counts_of_one_are_singular(
    jobd_server_factory: JobdServerFactory, tmp_path: Path
) -> None:
    server = await jobd_server_factory(jobs=JOBS)
    alone = (await server.client.launch(*WAKE)).session_id
    await server.client.wait(alone, timeout_s=10)
    workflow = await jobd("workflow", alone, url=server.url)
    assert workflow.status == 0, workflow
    assert workflow.out.splitlines()[-1] == "done: 1 step"

    never = gate("singular")
    one_line = tmp_path / "one.jsonl"
    one_line.write_text(json.dumps({"gate": "singular"}) + "\n")
    waited = await jobd(
        "launch", JOB_TYPE, STEP, "--payloads", str(one_line), "--wait", "--timeout", "0.3",
        url=server.url,
    )  # fmt: skip
    never.set()
    assert waited.status == 1 and waited.err.splitlines() == [
        "launched 1 job; waiting for it to finish",
        "jobd: error: the job did not finish within 0.3 s",
    ]


async def test_jobs_show_prints_an_unset_result_as_a_dash(jobd_server: JobdTestServer) -> None:
    waiting = (await jobd_server.client.launch(*WAKE, delay_s=3600)).session_id
    shown = fields_of(await jobd("jobs", "show", waiting, url=jobd_server.url))
    assert (shown["started"], shown["retry_of"], shown["result"]) == ("-", "-", "-")
    as_json = await jobd("jobs", "show", waiting, "--json", url=jobd_server.url)
    assert as_json.json()["result"] is None  # --json keeps JSON's null
