"""Decode as the reference's pydantic v1 models do: coerce what they coerce, name every problem.

msgspec decodes exact JSON types fast; the reference's models (pydantic v1) also accept
`"limit": "5"`, `5` for a string field, `"yes"` for a bool and so on, and report all the
problems of a value at once. `convert` takes msgspec's fast path first and only on a mismatch
walks the value against the model with pydantic v1's scalar rules, so valid requests pay
nothing for the leniency.
"""

from __future__ import annotations

import enum
import operator
import types
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import msgspec

T = TypeVar("T")
Problem = dict[str, Any]
Loc = list[str | int]

# pydantic v1's bool_validator accepts these (strings compared in lower case).
_TRUE: frozenset[Any] = frozenset({1, "1", "on", "t", "true", "y", "yes"})
_FALSE: frozenset[Any] = frozenset({0, "0", "off", "f", "false", "n", "no"})


class Invalid(ValueError):
    """A value does not fit its model; `problems` lists every reason, pydantic v1 style."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(problems)
        self.problems = problems


def problem(loc: Loc, msg: str, kind: str, **ctx: Any) -> Problem:
    """One entry of a pydantic v1 error list (a 422 `detail` entry)."""
    entry: Problem = {"loc": loc, "msg": msg, "type": kind}
    if ctx:
        entry["ctx"] = ctx
    return entry


def convert(value: Any, model: type[T], loc: Loc | None = None) -> T:
    """`value` as `model`, coerced as pydantic v1 would, or `Invalid` with every problem.

    `loc` prefixes each problem's location (`["body"]` for a request body)."""
    try:
        return msgspec.convert(value, model)  # exact types: the fast path
    except msgspec.ValidationError:
        pass
    problems: list[Problem] = []
    fixed = _coerce(value, model, list(loc or []), problems)
    if problems:
        raise Invalid(problems)
    try:
        return msgspec.convert(fixed, model, strict=False)
    except msgspec.ValidationError as exc:  # a constraint the walk does not model
        raise Invalid([problem(list(loc or []), str(exc), "value_error")]) from None


def as_text(model_name: str, problems: list[Problem]) -> str:
    """pydantic v1's `str(ValidationError)`: a count, then each location and message."""
    count = len(problems)
    lines = [f"{count} validation error{'' if count == 1 else 's'} for {model_name}"]
    for entry in problems:
        ctx = "".join(f"; {k}={v}" for k, v in entry.get("ctx", {}).items())
        lines.append(" -> ".join(str(part) for part in entry["loc"]))
        lines.append(f"  {entry['msg']} (type={entry['type']}{ctx})")
    return "\n".join(lines)


def _coerce(value: Any, kind: Any, loc: Loc, problems: list[Problem]) -> Any:
    """`value` coerced towards `kind`; what cannot be is added to `problems`."""
    metas: tuple[Any, ...] = ()
    if get_origin(kind) is Annotated:
        kind, *extra = get_args(kind)
        metas = tuple(m for m in extra if isinstance(m, msgspec.Meta))
    origin = get_origin(kind)
    if kind is Any:
        return value
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(kind) if a is not type(None)]
        if value is None and len(options) < len(get_args(kind)):
            return None
        return _coerce(value, options[0], loc, problems)  # jobd's unions are `X | None`
    if value is None:
        problems.append(problem(loc, "none is not an allowed value", "type_error.none.not_allowed"))
        return value
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        return _struct(value, kind, loc, problems)
    if origin is list or kind is list:
        if not isinstance(value, list):
            problems.append(problem(loc, "value is not a valid list", "type_error.list"))
            return value
        (item,) = get_args(kind) or (Any,)
        return [_coerce(v, item, [*loc, i], problems) for i, v in enumerate(value)]
    if origin is dict or kind is dict:
        if not isinstance(value, dict):
            problems.append(problem(loc, "value is not a valid dict", "type_error.dict"))
            return value
        item = (get_args(kind) or (str, Any))[1]
        return {k: _coerce(v, item, [*loc, k], problems) for k, v in value.items()}
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return _member(value, kind, loc, problems)
    scalar = _SCALARS.get(kind)
    if scalar is None:
        return value  # left to msgspec
    try:
        coerced = scalar(value)
    except (TypeError, ValueError, OverflowError):
        msg, error_type = _SCALAR_ERRORS[kind]
        problems.append(problem(loc, msg, error_type))
        return value
    for meta in metas:
        _check_bounds(coerced, meta, loc, problems)
    return coerced


def _struct(value: Any, model: type[msgspec.Struct], loc: Loc, problems: list[Problem]) -> Any:
    """A JSON object checked field by field against a struct."""
    if not isinstance(value, dict):
        problems.append(problem(loc, "value is not a valid dict", "type_error.dict"))
        return value
    fixed = dict(value)
    known = set()
    for field in msgspec.structs.fields(model):
        known.add(field.encode_name)
        if field.encode_name in value:
            fixed[field.encode_name] = _coerce(
                value[field.encode_name], field.type, [*loc, field.encode_name], problems
            )
        elif field.required:
            problems.append(
                problem([*loc, field.encode_name], "field required", "value_error.missing")
            )
    if model.__struct_config__.forbid_unknown_fields:
        for name in value.keys() - known:
            problems.append(
                problem([*loc, name], "extra fields not permitted", "value_error.extra")
            )
    return fixed


def _member(value: Any, kind: type[enum.Enum], loc: Loc, problems: list[Problem]) -> Any:
    """An enum member by value, or pydantic v1's enumeration error naming what is permitted."""
    permitted = [member.value for member in kind]
    if value in permitted:
        return value
    problems.append(
        problem(
            loc,
            "value is not a valid enumeration member; permitted: "
            + ", ".join(repr(v) for v in permitted),
            "type_error.enum",
            enum_values=permitted,
        )
    )
    return value


def _to_str(value: Any) -> str:
    """pydantic v1's str_validator: numbers (and bools, which are ints) become their text."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    raise TypeError(value)


def _to_int(value: Any) -> int:
    """pydantic v1's int_validator: `int(value)`, so `"5"` and `5.7` (as 5) are accepted."""
    if isinstance(value, dict | list):
        raise TypeError(value)
    return int(value)


def _to_float(value: Any) -> float:
    """pydantic v1's float_validator: `float(value)`."""
    if isinstance(value, dict | list):
        raise TypeError(value)
    return float(value)


def _to_bool(value: Any) -> bool:
    """pydantic v1's bool_validator: true/false, 1/0, "yes"/"no", "on"/"off", "t"/"f"..."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        value = value.lower()
    if isinstance(value, int | float | str):
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
    raise ValueError(value)


_SCALARS: dict[Any, Any] = {str: _to_str, int: _to_int, float: _to_float, bool: _to_bool}
_SCALAR_ERRORS = {
    str: ("str type expected", "type_error.str"),
    int: ("value is not a valid integer", "type_error.integer"),
    float: ("value is not a valid float", "type_error.float"),
    bool: ("value could not be parsed to a boolean", "type_error.bool"),
}


def _check_bounds(value: Any, meta: msgspec.Meta, loc: Loc, problems: list[Problem]) -> None:
    """The numeric limits of an `Annotated[..., Meta(ge=, le=, gt=, lt=)]` field."""
    checks = [
        (meta.ge, operator.ge, "greater than or equal to", "not_ge"),
        (meta.gt, operator.gt, "greater than", "not_gt"),
        (meta.le, operator.le, "less than or equal to", "not_le"),
        (meta.lt, operator.lt, "less than", "not_lt"),
    ]
    for limit, holds, words, code in checks:
        if limit is not None and not holds(value, limit):
            problems.append(
                problem(
                    loc,
                    f"ensure this value is {words} {limit}",
                    f"value_error.number.{code}",
                    limit_value=limit,
                )
            )
