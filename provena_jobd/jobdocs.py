"""Write docs/jobs.md from the payload and result models: `python -m provena_jobd.jobdocs >
docs/jobs.md`.

Every job type and sub type, the fields of its payload and result, and an example launch
whose payload is built from the model. The test suite compares docs/jobs.md with `render()`
and launches every example, so the page can neither drift nor show a payload jobd refuses.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

import msgspec
import msgspec.inspect as mi

from .models import SUB_TYPES_BY_JOB_TYPE, JobSubType
from .payloads import PAYLOAD_MODELS, RESULT_MODELS

HEADER = """\
# Job types, payloads and results

<!-- Generated from provena_jobd/payloads.py by `python -m provena_jobd.jobdocs > docs/jobs.md`;
     tests/client/test_job_docs.py fails when this page and the models differ. -->

Every job type of Provena's Job API and its sub types, with the fields of the payload a
launch must carry (`job_payload`) and of the result a finished job has (`result`). A payload
that does not fit is refused at launch with `400 Invalid payload supplied: ...` naming the
field; fields not listed are ignored. Each sub type has an example launch with the
[command line](cli.md); the same payload works as `job_payload` in `POST /jobs/admin/launch`.
Sub types declared in `jobd.toml` (`[jobs.<SUB_TYPE>] job_type = "..."`) accept any JSON
object.
"""

# Example values by field name, where a made-up string would not show what the field holds.
EXAMPLE_STRINGS = {
    "email_to": "someone@example.org",
    "subject": "Your dataset was registered",
    "body": "Hello, your dataset 10378.1/1700001 is registered.",
    # STUDY, so that GENERATE_REPORT's example finds the item REGISTER_CREATE_ACTIVITY's made.
    "item_subtype": "STUDY",
    "created_item_subtype": "STUDY",
    "user_info": "alice",
    "reason": "example",
}


def describe_type(kind: mi.Type) -> str:
    """A field's type in words, with its limits."""
    if isinstance(kind, mi.UnionType):
        return " or ".join(describe_type(member) for member in kind.types)
    if isinstance(kind, mi.NoneType):
        return "null"
    if isinstance(kind, mi.EnumType):
        return "one of " + ", ".join(f"`{member.value}`" for member in kind.cls)
    if isinstance(kind, mi.StrType):
        return "string"
    if isinstance(kind, mi.BoolType):
        return "boolean"
    if isinstance(kind, mi.IntType):
        limits = [f"≥ {kind.ge}" if kind.ge is not None else "", f"≤ {kind.le}" if kind.le else ""]
        shown = ", ".join(limit for limit in limits if limit)
        return f"integer ({shown})" if shown else "integer"
    if isinstance(kind, mi.FloatType):
        return "number"
    if isinstance(kind, mi.DictType):
        return "object"
    if isinstance(kind, mi.ListType):
        return f"list of {describe_type(kind.item_type)}s"
    return "any JSON"


def example_value(name: str, kind: mi.Type) -> Any:
    """A value for a field that its model accepts."""
    if isinstance(kind, mi.UnionType):
        kind = next(member for member in kind.types if not isinstance(member, mi.NoneType))
    if isinstance(kind, mi.StrType):
        if name in EXAMPLE_STRINGS:
            return EXAMPLE_STRINGS[name]
        return "10378.1/1700001" if name.endswith("_id") or name == "id" else f"<{name}>"
    if isinstance(kind, mi.EnumType):
        values = [member.value for member in kind.cls]
        return EXAMPLE_STRINGS[name] if EXAMPLE_STRINGS.get(name) in values else values[0]
    if isinstance(kind, mi.BoolType):
        return True
    if isinstance(kind, mi.IntType):
        return kind.ge if kind.ge is not None else 1
    if isinstance(kind, mi.FloatType):
        return 1.0
    if isinstance(kind, mi.ListType):
        return [example_value(name, kind.item_type)]
    if isinstance(kind, mi.DictType):
        return {"id": "10378.1/1700001"}
    return None


def fields_of(model: type[msgspec.Struct]) -> list[mi.Field]:
    """A model's fields, in declaration order."""
    info = mi.type_info(model)
    assert isinstance(info, mi.StructType)
    return list(info.fields)


def example_payload(sub_type: str) -> dict[str, Any]:
    """A payload for `sub_type` built from its model: every required field, no optional one."""
    return {
        field.encode_name: example_value(field.encode_name, field.type)
        for field in fields_of(PAYLOAD_MODELS[sub_type])
        if field.required
    }


def _field_table(model: type[msgspec.Struct]) -> str:
    """A markdown table of a model's fields, or a line saying it has none."""
    fields = fields_of(model)
    if not fields:
        return "`{}` (no fields)\n"
    rows = ["| field | type | |", "|---|---|---|"]
    for field in fields:
        needed = (
            "required" if field.required else f"optional, default `{json.dumps(field.default)}`"
        )
        rows.append(f"| `{field.encode_name}` | {describe_type(field.type)} | {needed} |")
    return "\n".join(rows) + "\n"


def _summary(model: type[msgspec.Struct]) -> str:
    """A model's docstring, without its leading `SUB_TYPE:`."""
    first, *rest = inspect.cleandoc(model.__doc__ or "").split("\n\n")
    summary = first.split(": ", 1)[1] if ": " in first else first
    return "\n\n".join([summary[:1].upper() + summary[1:], *rest])


def render() -> str:
    """The markdown page."""
    parts = [HEADER, "\n| job type | sub types |\n|---|---|\n"]
    for job_type, sub_types in SUB_TYPES_BY_JOB_TYPE.items():
        listed = ", ".join(f"[`{s.value}`](#{s.value.lower()})" for s in sub_types)
        parts.append(f"| `{job_type.value}` | {listed} |\n")
    for job_type, sub_types in SUB_TYPES_BY_JOB_TYPE.items():
        parts.append(f"\n## Job type `{job_type.value}`\n")
        for sub_type in sub_types:
            parts.append(_sub_type_section(job_type.value, sub_type))
    return "".join(parts)


def _sub_type_section(job_type: str, sub_type: JobSubType) -> str:
    """One sub type: what it is, payload and result fields, an example launch."""
    payload = PAYLOAD_MODELS[sub_type]
    payload_text = json.dumps(example_payload(sub_type))
    return (
        f"\n### {sub_type.value}\n\n{_summary(payload)}\n\n"
        f"Payload:\n\n{_field_table(payload)}\n"
        f"Result:\n\n{_field_table(RESULT_MODELS[sub_type])}\n"
        f"```sh\njobd launch {job_type} {sub_type.value} --payload '{payload_text}' --wait\n```\n"
    )


if __name__ == "__main__":  # pragma: no cover - run by hand to regenerate the page
    print(render(), end="")
