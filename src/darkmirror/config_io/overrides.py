"""Command-line ``key.path=value`` overrides of a TOML document: parse, apply, blame."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from typing import Any, NamedTuple

from darkmirror.config_io.locator import Loc, TomlLocator
from darkmirror.errors import InputError, field_path


class Override(NamedTuple):
    """A parsed ``key.path=value`` override.

    Attributes:
        keys: The dotted key split into parts; a part of digits indexes an array of tables.
        value: The value, parsed as TOML (``2``, ``"x"``, ``[0, 1]``, ``{a = 1}``), or the
            raw text when it is not valid TOML (so ``name=gpt2`` needs no quotes).
        text: The override as the user wrote it, for error messages.
    """

    keys: tuple[str, ...]
    value: Any
    text: str


def parse_override(text: str) -> Override:
    """Parse one ``key.path=value`` override.

    The key follows TOML's dotted-key syntax, so a part that contains a dot can be quoted
    (``models."gpt2.small".seed=1``). The value is parsed as a TOML value; if that fails it is
    taken as a plain string. Note that ``inf``, ``nan``, ``true`` and dates are valid TOML:
    quote them (``name="true"``) to get a string.

    Args:
        text: The override, e.g. ``"finetune.epochs=2"``.

    Raises:
        InputError: If there is no ``=`` or the key is not a valid TOML key.
    """
    split = _find_unquoted_equals(text)
    if split is None:
        raise InputError(
            f"override '{text}' must look like key.path=value (e.g. finetune.epochs=2)"
        )
    key_text, value_text = text[:split].strip(), text[split + 1 :].strip()
    try:
        if "\n" in key_text:  # would let the key smuggle in more TOML
            raise ValueError
        keys = _flatten_single_key(tomllib.loads(f"{key_text} = 0"))
    except (tomllib.TOMLDecodeError, ValueError):
        raise InputError(f"override '{text}': '{key_text}' is not a valid key path") from None
    try:
        parsed = tomllib.loads(f"value = {value_text}")
        # A value such as '1\nother = 2' parses, but it is not one value: keep it as text.
        value = parsed["value"] if parsed.keys() == {"value"} else value_text
    except tomllib.TOMLDecodeError:
        value = value_text
    return Override(keys, value, text)


def _find_unquoted_equals(text: str) -> int | None:
    quote: str | None = None
    escaped = False
    for index, char in enumerate(text):
        if quote == '"' and escaped:
            escaped = False
        elif quote == '"' and char == "\\":
            escaped = True
        elif quote is not None:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "=":
            return index
    return None


def _flatten_single_key(document: dict[str, Any]) -> tuple[str, ...]:
    keys: list[str] = []
    node: Any = document
    while isinstance(node, dict):
        if len(node) != 1:
            raise ValueError("not a single key")
        ((key, node),) = node.items()
        keys.append(key)
    return tuple(keys)


def apply_override(data: dict[str, Any], override: Override) -> Loc:
    """Set the override's value in ``data``; return its location, with array indices as ints."""
    node: Any = data
    loc: list[str | int] = []
    for depth, key in enumerate(override.keys):
        is_last = depth == len(override.keys) - 1
        where = field_path(loc) or "the top level"
        if isinstance(node, list):
            if not key.isdigit():
                raise InputError(
                    f"override '{override.text}': {where} is a list; use a number "
                    f"(0 to {len(node) - 1}) instead of '{key}'"
                )
            index = int(key)
            if index >= len(node):
                raise InputError(
                    f"override '{override.text}': {where} has {len(node)} entries, "
                    f"so index {index} does not exist"
                )
            loc.append(index)
            if is_last:
                node[index] = override.value
            else:
                node = node[index]
        elif isinstance(node, dict):
            loc.append(key)
            if is_last:
                node[key] = override.value
            else:
                # Missing tables are created, so an override can set a key the file omits.
                node = node.setdefault(key, {})
        else:
            raise InputError(
                f"override '{override.text}': {where} is a value ({node!r}), not a table"
            )
    return tuple(loc)


def responsible_override(
    loc: Loc, applied: Sequence[tuple[Loc, str]], locator: TomlLocator
) -> str | None:
    """The override to blame for a problem at ``loc``, or None when the file is to blame.

    That is the last override that set the value at ``loc`` (or a value around it), or one
    that created ``loc`` itself when the file does not write it (an unknown key).

    Args:
        loc: Where the validation problem is.
        applied: Each applied override's location and text, in the order applied.
        locator: The file's locator.
    """
    # The last override wins, as it does for the data.
    for override_loc, text in reversed(applied):
        if loc[: len(override_loc)] == override_loc:
            return text  # the bad value is the override's value, or inside it
        if override_loc[: len(loc)] == loc and locator.exact_line(loc) is None:
            return text  # the override created the table that is wrong (an unknown key)
    return None
