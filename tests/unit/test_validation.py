"""Request validation errors come out in the reference's pydantic-v1 shape."""

from __future__ import annotations

import msgspec
import pytest

from provena_jobd.http.validation import describe
from provena_jobd.models import LaunchJobRequest, ListJobsRequest


def problem_for(body: bytes, model: type[object]) -> dict[str, object]:
    with pytest.raises(msgspec.ValidationError) as caught:
        msgspec.json.decode(body, type=model)
    return describe(caught.value)


def test_missing_field() -> None:
    body = b'{"job_type": "EMAIL", "job_payload": {}}'
    assert problem_for(body, LaunchJobRequest) == {
        "loc": ["body", "job_sub_type"],
        "msg": "field required",
        "type": "value_error.missing",
    }


def test_wrong_type_names_the_field() -> None:
    body = b'{"job_type": "EMAIL", "job_sub_type": "SEND_EMAIL", "job_payload": []}'
    problem = problem_for(body, LaunchJobRequest)
    assert problem["loc"] == ["body", "job_payload"]
    assert problem["type"] == "type_error"


@pytest.mark.parametrize("limit", [0, -1, 1001])
def test_limit_out_of_range(limit: int) -> None:
    problem = problem_for(b'{"limit": %d}' % limit, ListJobsRequest)
    assert problem["loc"] == ["body", "limit"]
    assert problem["type"] == "value_error"
