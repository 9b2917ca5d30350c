"""Explain a pydantic validation error in one sentence, at the place in the data it is."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from pydantic import BaseModel, ValidationError

from darkmirror.config_io.locator import Loc
from darkmirror.errors import field_path


class ValidationProblem(NamedTuple):
    """One pydantic error, explained for a user.

    Attributes:
        loc: Where in the input data the problem is (union member names removed).
        message: What is wrong and what was expected, e.g.
            ``"expected one of 'sft', 'dpo', got 'ppo'"``.
    """

    loc: Loc
    message: str

    @property
    def field(self) -> str | None:
        """The location as a dotted path, e.g. ``"finetunes[1].seed"``."""
        return field_path(self.loc)


def describe_validation_error(
    error: ValidationError, data: Any, model_cls: type[BaseModel] | None = None
) -> ValidationProblem:
    """Explain the first error of a pydantic :class:`ValidationError` in one sentence.

    Errors from the members of a union on the same field are merged into one "expected A or
    B" sentence; the number of further problems is appended.

    Args:
        error: The exception raised by ``model_validate``.
        data: The input that was validated (used to tell data keys from union member names
            in pydantic's error locations).
        model_cls: The validated model, if known; used to suggest the right name for an
            unknown field.
    """
    errors = error.errors(include_url=False)
    first = errors[0]
    loc = _data_loc(data, first["loc"])
    same_field = [e for e in errors if _data_loc(data, e["loc"]) == loc]
    kind = first["type"]
    if kind == "extra_forbidden":
        message = _unknown_field_message(loc, model_cls)
    elif kind == "missing":
        message = "required field is missing"
    elif kind in ("value_error", "assertion_error"):
        # Our own validators write complete sentences.
        message = first["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
    else:
        expectations = [_expectation(e) for e in same_field]
        if all(expectations):
            message = f"expected {' or '.join(dict.fromkeys(expectations))}"
        else:
            message = first["msg"]
        message += f", got {_short_repr(first['input'])}"
    more = len(errors) - len(same_field)
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return ValidationProblem(loc, message)


def _expectation(error: Mapping[str, Any]) -> str | None:
    """``"one of 'a', 'b'"`` or ``"a valid integer"``, or None if pydantic's text is not of that kind."""
    expected = (error.get("ctx") or {}).get("expected")
    if isinstance(expected, str):  # literal and enum errors: "'a', 'b' or 'c'"
        head, sep, tail = expected.rpartition(" or ")
        return f"one of {head}, {tail}" if sep else expected
    message: str = error["msg"]
    if message.startswith("Input should be "):
        # "a valid integer, unable to parse string as an integer": the got-value says the rest.
        return message.removeprefix("Input should be ").split(", ")[0]
    return None


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _data_loc(data: Any, loc: Sequence[str | int]) -> Loc:
    """Keep the parts of a pydantic error location that are keys or indices in ``data``.

    Pydantic inserts union member names (``'int'``, ``'Finetune'``) into locations; they are
    not fields the user wrote. A final key absent from the data is kept: it names a missing
    or unknown field.
    """
    kept: list[str | int] = []
    node = data
    for depth, part in enumerate(loc):
        in_mapping = isinstance(node, Mapping) and part in node
        in_list = isinstance(node, list | tuple) and isinstance(part, int) and 0 <= part < len(node)
        if in_mapping or in_list:
            node = node[part]
        elif isinstance(node, Mapping) and depth == len(loc) - 1:
            node = None
        else:
            continue
        kept.append(part)
    return tuple(kept)


def _unknown_field_message(loc: Loc, model_cls: type[BaseModel] | None) -> str:
    name = str(loc[-1]) if loc else "?"
    message = f"unknown field '{name}'"
    allowed = _field_names_at(model_cls, loc[:-1]) if model_cls else None
    if allowed:
        close = difflib.get_close_matches(name, allowed, n=1)
        if close:
            message += f"; did you mean '{close[0]}'?"
        else:
            message += f" (allowed: {', '.join(allowed)})"
    return message


def _field_names_at(model_cls: type[BaseModel], loc: Loc) -> list[str] | None:
    """Field names of the model found at ``loc`` inside ``model_cls``, if that is unambiguous."""
    annotation: Any = model_cls
    for part in loc:
        annotation = _unwrap(annotation)
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = {f.alias or name: f for name, f in annotation.model_fields.items()}
            if part not in fields:
                return None
            annotation = fields[str(part)].annotation
        elif origin in (list, tuple, Sequence) and args and isinstance(part, int):
            annotation = args[0]
        elif origin in (dict, Mapping) and len(args) == 2:
            annotation = args[1]
        else:
            return None
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or name for name, f in annotation.model_fields.items()]
    return None


def _unwrap(annotation: Any) -> Any:
    # Annotated[X, ...] -> X; X | None -> X. A union of several real types stays as it is.
    if typing.get_origin(annotation) is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return annotation
