"""Read a TOML file, apply overrides and validate it as a pydantic model.

Every failure is one :class:`~darkmirror.errors.InputError` that names the file, the line
(or the override responsible) and the field.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from darkmirror.config_io.locator import Loc, TomlLocator
from darkmirror.config_io.overrides import apply_override, parse_override, responsible_override
from darkmirror.config_io.validation import describe_validation_error
from darkmirror.errors import InputError, require_file

ModelT = TypeVar("ModelT", bound=BaseModel)


def load_toml_model(
    path: str | Path, model_cls: type[ModelT], overrides: Sequence[str] = ()
) -> ModelT:
    """Read a TOML file, apply ``key.path=value`` overrides and validate it as ``model_cls``.

    Args:
        path: The TOML file.
        model_cls: Any pydantic model; give it ``extra="forbid"`` so that misspelt keys are
            reported instead of ignored.
        overrides: Command-line style ``key.path=value`` strings applied in order (see
            :func:`parse_override`), e.g. ``["finetune.epochs=2", "models.0.seed=3"]``.

    Returns:
        The validated model.

    Raises:
        InputError: For a missing or unreadable file, a TOML syntax error, a malformed
            override, or the first validation error, naming the file, the line (or the
            override responsible) and the field.
    """
    if isinstance(overrides, str):  # a str is a Sequence[str] too, of single characters
        raise TypeError("overrides must be a list of 'key=value' strings, not one string")
    path = Path(path)
    text = read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _toml_syntax_error(exc, text, path) from None

    applied: list[tuple[Loc, str]] = []
    for raw in overrides:
        try:
            override = parse_override(raw)
            applied.append((apply_override(data, override), raw))
        except InputError as exc:
            raise InputError(exc.message, path=path) from None

    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        problem = describe_validation_error(exc, data, model_cls)
        locator = TomlLocator(text)
        culprit = responsible_override(problem.loc, applied, locator)
        if culprit is not None:
            # The value is not in the file, so a line number would mislead.
            message = f"{problem.message} (set by override '{culprit}')"
            raise InputError(message, path=path, field=problem.field) from None
        line = locator.line_of(problem.loc)
        raise InputError(problem.message, path=path, line=line, field=problem.field) from None


def model_from_overrides(
    model_cls: type[ModelT], overrides: Sequence[str], source: str = "--set"
) -> ModelT:
    """Validate ``model_cls`` from its defaults and ``key.path=value`` overrides alone.

    Args:
        model_cls: Any pydantic model whose fields all have defaults.
        overrides: Overrides as for :func:`load_toml_model`.
        source: What to call the overrides' origin in error messages (a CLI option).

    Raises:
        InputError: For a malformed override or a value that does not validate, naming the
            override and the field.
    """
    data: dict[str, Any] = {}
    applied: list[tuple[Loc, str]] = []
    for raw in overrides:
        applied.append((apply_override(data, parse_override(raw)), raw))
    try:
        return model_cls.model_validate(data)
    except ValidationError as exc:
        problem = describe_validation_error(exc, data, model_cls)
        culprit = next(
            (text for loc, text in reversed(applied) if problem.loc[: len(loc)] == loc), None
        )
        where = f" (set by {source} '{culprit}')" if culprit else ""
        raise InputError(problem.message + where, path=source, field=problem.field) from None


def read_text(path: str | Path) -> str:
    """Read a user file as UTF-8 text; a decoding error names the line.

    Args:
        path: The file to read.

    Raises:
        InputError: If the file is missing or is not valid UTF-8.
    """
    path = require_file(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")  # -sig: tolerate a byte-order mark
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError("not valid UTF-8 text", path=path, line=line) from None


_TOML_POSITION = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)$")


def _toml_syntax_error(exc: tomllib.TOMLDecodeError, text: str, path: Path) -> InputError:
    # Python 3.14 gives lineno/colno attributes; 3.11-3.13 only the "(at line X, column Y)"
    # suffix of the message.
    message = str(getattr(exc, "msg", None) or exc)
    line: int | None = getattr(exc, "lineno", None)
    column: int | None = getattr(exc, "colno", None)
    match = _TOML_POSITION.search(message)
    if match:
        message = message[: match.start()]
        if match.group(1):
            line, column = int(match.group(1)), int(match.group(2))
        else:
            line = text.count("\n") + 1
    where = f" (column {column})" if column else ""
    return InputError(f"invalid TOML: {message}{where}", path=path, line=line)
