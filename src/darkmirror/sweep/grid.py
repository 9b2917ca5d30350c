"""A sweep's grid: its axes, and the cells they span.

An axis sets one or more spec keys to each of its values in turn (several keys move in
lockstep: ``base.organism.seed`` and ``base.organism.world.seed`` together make one
organism per value). The cells are the cartesian product of the axes; each cell is the
spec with the cell's values applied as ``--set`` overrides would be.

An axis is a *replicate* when it draws independent copies of the same experiment (every
key names a seed, or the axis says ``replicate = true``): the sweep's report pools
replicates, resampling them first. Any other axis is a *condition* (a learning rate, a
dataset size): its cells are reported side by side, never pooled.

Written in a spec::

    [sweep]
    [[sweep.over]]
    keys = ["base.organism.seed", "base.organism.world.seed"]
    values = [0, 1, 2]
    name = "organism"          # optional: the label in cell names and tables

or on the command line: ``--over base.organism.seed+base.organism.world.seed=0,1,2``.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from darkmirror.config_io import describe_validation_error, parse_override
from darkmirror.errors import InputError

__all__ = ["Axis", "Cell", "SweepSpec", "axis_from_option", "cells_of", "sweep_from_options"]

ModelT = TypeVar("ModelT", bound=BaseModel)


class Axis(BaseModel):
    """One axis of a sweep (see the module docstring).

    Args:
        keys: The spec keys it sets, in lockstep (dotted paths, as ``--set`` takes them).
        values: The values, each given to every key.
        name: Its label in cell names and tables (default: from the first key).
        replicate: Whether its cells are replicates to pool (default: every key is a seed).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    keys: list[str] = Field(min_length=1)
    values: list[Any] = Field(min_length=1)
    name: str | None = None
    replicate: bool | None = None

    @field_validator("keys")
    @classmethod
    def _valid_keys(cls, keys: list[str]) -> list[str]:
        for key in keys:
            parse_override(f"{key}=0")  # raises on a malformed key path
        if len(set(keys)) != len(keys):
            raise ValueError(f"a key appears twice in {keys}")
        return keys

    @field_validator("values")
    @classmethod
    def _distinct(cls, values: list[Any]) -> list[Any]:
        texts = [json.dumps(v, sort_keys=True) for v in values]
        if len(set(texts)) != len(texts):
            raise ValueError(f"a value appears twice in {values}")
        return values

    @property
    def label(self) -> str:
        """``organism`` for ``base.organism.seed``, ``learning_rate`` for
        ``finetune.learning_rate``: the part that says what varies."""
        if self.name:
            return self.name
        parts = self.keys[0].split(".")
        return parts[-2] if parts[-1] == "seed" and len(parts) > 1 else parts[-1]

    @property
    def is_replicate(self) -> bool:
        if self.replicate is not None:
            return self.replicate
        return all(k.split(".")[-1] == "seed" for k in self.keys)


class SweepSpec(BaseModel):
    """The ``[sweep]`` table: the axes of the grid."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    over: list[Axis] = Field(min_length=1)

    @model_validator(mode="after")
    def _distinct_axes(self) -> SweepSpec:
        keys = [k for axis in self.over for k in axis.keys]
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"key(s) {twice} are set by more than one axis")
        labels = [axis.label for axis in self.over]
        if len(set(labels)) != len(labels):
            raise ValueError(f"two axes have the same name in {labels}; give them name = '...'")
        return self


def axis_from_option(text: str) -> Axis:
    """An axis from ``--over KEY[+KEY...]=V1,V2,...``.

    Each value is read as ``--set`` reads one (TOML, else plain text). A value with a comma
    of its own (a list) needs the ``[sweep]`` table.

    Raises:
        InputError: No ``=``, a bad key, no values, or a value twice.
    """
    if "=" not in text:
        raise InputError(f"--over '{text}' must look like KEY=V1,V2 (e.g. finetune.seed=0,1)")
    keys_text, values_text = text.split("=", 1)
    data = {
        "keys": [k.strip() for k in keys_text.split("+")],
        "values": [
            parse_override(f"x={v.strip()}").value for v in values_text.split(",") if v.strip()
        ],
    }
    return _validated(Axis, data, f"--over '{text}'")


def sweep_from_options(texts: Sequence[str]) -> SweepSpec:
    """The grid of several ``--over`` options (see :func:`axis_from_option`).

    Raises:
        InputError: A bad axis, or two axes that set the same key.
    """
    axes = [axis_from_option(t) for t in texts]
    return _validated(SweepSpec, {"over": axes}, " ".join(f"--over {t}" for t in texts))


def _validated(model: type[ModelT], data: dict[str, Any], where: str) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(
            f"{where}: {describe_validation_error(exc, data, model).message}"
        ) from None


@dataclass(frozen=True)
class Cell:
    """One cell of the grid.

    Args:
        id: Its directory name under ``cells/`` (``organism-1`` or ``organism-1_lr-0.001``).
        overrides: The ``key=value`` overrides that make its spec.
        values: Each axis's value in this cell, by axis label.
        replicate: The labels of its replicate axes' values (``organism-1``), the unit the
            pooled report resamples; empty when the sweep has no replicate axis.
        condition: The labels of its condition axes' values; cells with the same
            condition are pooled together.
    """

    id: str
    overrides: tuple[str, ...]
    values: dict[str, Any]
    replicate: str
    condition: str


def _slug(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-") or "x"


def cells_of(sweep: SweepSpec) -> list[Cell]:
    """The cells of the grid, first axis slowest."""
    cells = []
    for combo in itertools.product(*(axis.values for axis in sweep.over)):
        overrides: list[str] = []
        tags, replicate, condition = [], [], []
        for axis, value in zip(sweep.over, combo, strict=True):
            overrides += [f"{key}={toml_value(value)}" for key in axis.keys]
            tag = f"{axis.label}-{_slug(value)}"
            tags.append(tag)
            (replicate if axis.is_replicate else condition).append(tag)
        cells.append(
            Cell(
                "_".join(tags),
                tuple(overrides),
                {a.label: v for a, v in zip(sweep.over, combo, strict=True)},
                "_".join(replicate),
                "_".join(condition),
            )
        )
    ids = [c.id for c in cells]
    if len(set(ids)) != len(ids):  # two values with the same slug ("a b" and "a-b")
        cells = [replace(c, id=f"cell-{i}") for i, c in enumerate(cells)]
    return cells


def toml_value(value: Any) -> str:
    """``value`` as TOML text, for an override (JSON is not TOML for tables and booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)  # numbers, and strings as TOML basic strings
