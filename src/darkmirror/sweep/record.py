"""``sweep.json``: what a sweep ran, written before its steps and read by its report."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from darkmirror.sweep.grid import Cell, SweepSpec

__all__ = ["SWEEP_FILE", "CellRecord", "SweepRecord"]

SWEEP_FILE = "sweep.json"


class CellRecord(BaseModel):
    """A cell as ``sweep.json`` records it (see :class:`~darkmirror.sweep.grid.Cell`)."""

    id: str
    overrides: list[str]
    values: dict[str, Any]
    replicate: str
    condition: str

    @classmethod
    def of(cls, cell: Cell) -> CellRecord:
        return cls(
            id=cell.id,
            overrides=list(cell.overrides),
            values=cell.values,
            replicate=cell.replicate,
            condition=cell.condition,
        )


class SweepRecord(BaseModel):
    """``sweep.json``: what a sweep ran.

    Args:
        experiment: The experiment every cell runs.
        name: The spec's name.
        spec_file: The spec file the cells were made from.
        overrides: The ``--set`` overrides applied to every cell before its own.
        sweep: The grid.
        cells: Every cell.
        steps_declared: Steps the cells' plans declare, counted once per cell.
        steps_unique: Steps the sweep ran (or reused): the declared ones, each once.
    """

    model_config = ConfigDict(extra="forbid")

    format: Literal["darkmirror.sweep/1"] = "darkmirror.sweep/1"
    experiment: str
    name: str
    spec_file: str
    overrides: list[str]
    sweep: SweepSpec
    cells: list[CellRecord]
    steps_declared: int
    steps_unique: int
