"""Requests and payloads decode as the reference's pydantic v1 models do: coerced where they
coerce, and every problem named in their shape and words."""

from __future__ import annotations

from typing import Any

import pytest

from provena_jobd.coercion import Invalid, as_text, convert
from provena_jobd.models import LaunchJobRequest, ListJobsRequest
from provena_jobd.payloads import GenerateReportPayload, SendEmailPayload


def problems(value: Any, model: type[object]) -> list[dict[str, Any]]:
    with pytest.raises(Invalid) as caught:
        convert(value, model, ["body"])
    return caught.value.problems


@pytest.mark.parametrize(
    ("given", "expected"),
    [("5", 5), (" 7 ", 7), (5.9, 5), (True, 1), (9, 9)],
)
def test_an_int_field_takes_what_int_takes(given: Any, expected: int) -> None:
    assert convert({"limit": given}, ListJobsRequest).limit == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [("true", True), ("Yes", True), ("on", True), (1, True), ("false", False), ("n", False)],
)
def test_a_bool_field_takes_pydantic_v1_spellings(given: Any, expected: bool) -> None:
    body = {"job_type": "EMAIL", "job_sub_type": "EMAIL_WAKE_UP", "job_payload": {}}
    assert convert({**body, "request_batch_id": given}, LaunchJobRequest).request_batch_id is (
        expected
    )


def test_a_str_field_takes_numbers_as_their_text() -> None:
    body = {"job_type": "EMAIL", "job_sub_type": "EMAIL_WAKE_UP", "job_payload": {}}
    assert convert({**body, "username": 42}, LaunchJobRequest).username == "42"
    assert convert({**body, "add_to_batch": 1.5}, LaunchJobRequest).add_to_batch == "1.5"


def test_every_problem_is_listed_in_field_order() -> None:
    found = problems({"job_payload": [], "request_batch_id": "maybe"}, LaunchJobRequest)
    assert found == [
        {"loc": ["body", "job_type"], "msg": "field required", "type": "value_error.missing"},
        {"loc": ["body", "job_sub_type"], "msg": "field required", "type": "value_error.missing"},
        {
            "loc": ["body", "job_payload"],
            "msg": "value is not a valid dict",
            "type": "type_error.dict",
        },
        {
            "loc": ["body", "request_batch_id"],
            "msg": "value could not be parsed to a boolean",
            "type": "type_error.bool",
        },
    ]


@pytest.mark.parametrize(("limit", "code"), [(0, "not_ge"), ("-1", "not_ge"), (1001, "not_le")])
def test_limit_out_of_range_names_its_bound(limit: Any, code: str) -> None:
    (found,) = problems({"limit": limit}, ListJobsRequest)
    assert found["loc"] == ["body", "limit"]
    assert found["type"] == f"value_error.number.{code}"
    assert found["ctx"] == {"limit_value": 1 if code == "not_ge" else 1000}


def test_a_body_that_is_not_an_object() -> None:
    assert problems([1], ListJobsRequest) == [
        {"loc": ["body"], "msg": "value is not a valid dict", "type": "type_error.dict"}
    ]


def test_the_payload_text_reads_as_pydantic_v1s() -> None:
    with pytest.raises(Invalid) as caught:
        convert({"email_to": {"a": 1}, "body": None}, SendEmailPayload)
    assert as_text("EmailSendEmailPayload", caught.value.problems) == (
        "4 validation errors for EmailSendEmailPayload\n"
        "email_to\n  str type expected (type=type_error.str)\n"
        "subject\n  field required (type=value_error.missing)\n"
        "body\n  none is not an allowed value (type=type_error.none.not_allowed)\n"
        "reason\n  field required (type=value_error.missing)"
    )


def test_an_unknown_enum_value_lists_the_permitted_ones() -> None:
    payload = {"id": "x", "item_subtype": "THING", "depth": "2", "user_info": "u"}
    (found,) = problems(payload, GenerateReportPayload)
    assert found["type"] == "type_error.enum"
    assert "'STUDY'" in found["msg"] and "'MODEL_RUN'" in found["msg"]
    assert convert({**payload, "item_subtype": "STUDY"}, GenerateReportPayload).depth == 2
