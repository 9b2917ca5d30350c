"""Running a sweep: every cell's plan merged into one, so shared steps run once.

Layout of a sweep directory::

    sweep.json         the grid, each cell's overrides, and how many steps were shared
    environment.json   as in a run directory
    steps/<key>/       every step of every cell, once (a step two cells declare alike,
                       such as a dataset of the same world, has one key and one directory)
    cells/<id>/        each cell's run directory (spec.json, rows.jsonl, summary.json,
                       report.md): ``darkmirror report cells/<id>`` rebuilds it
    summary.json       the pooled figures; report.md their tables

A sweep resumes like a run: its finished steps are reused whichever executor wrote them,
and a grid grown by a value reuses every step of the cells it had.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel

from darkmirror.errors import InputError
from darkmirror.experiments import EXPERIMENTS
from darkmirror.runner import Executor, ExecutorSpec, LocalExecutor, Run, merge_plans
from darkmirror.spec import DEFAULT_SPEC, builtin_config, load_run_file
from darkmirror.sweep.grid import Cell, SweepSpec, cells_of, sweep_from_options
from darkmirror.sweep.record import SWEEP_FILE, CellRecord, SweepRecord
from darkmirror.sweep.report import write_sweep_report

log = logging.getLogger(__name__)

__all__ = ["SweepFile", "load_sweep", "run_sweep"]


@dataclass(frozen=True)
class SweepFile:
    """A spec file read as a sweep.

    Args:
        path: The spec file (None: the default experiment's).
        overrides: ``--set`` overrides applied to every cell before its own.
        sweep: The grid.
        cells: Its cells.
        specs: Each cell's validated spec, by cell id.
        executor: Where the steps run (the file's ``[executor]`` and any override of it).
    """

    path: Path | None
    overrides: tuple[str, ...]
    sweep: SweepSpec
    cells: list[Cell]
    specs: dict[str, BaseModel]
    executor: ExecutorSpec

    @property
    def name(self) -> str:
        return self.specs[self.cells[0].id].name  # type: ignore[attr-defined]


def load_sweep(
    path: Path | None,
    overrides: Sequence[str] = (),
    over: Sequence[str] = (),
    executor_overrides: Sequence[str] = (),
) -> SweepFile:
    """The grid (``--over`` options, else the file's ``[sweep]`` table), its cells and each
    cell's validated spec, all validated before anything runs.

    Args:
        path: The spec file (default: the default experiment's).
        overrides: ``--set`` overrides for every cell.
        over: ``--over`` axes; they replace the file's ``[sweep]`` table.
        executor_overrides: Overrides of ``[executor]`` (they change where the steps run,
            never a result, so the cells do not record them).

    Raises:
        InputError: Nothing to sweep, a bad axis, or a cell whose spec does not validate
            (the error names the cell's overrides).
    """
    loaded = load_run_file(path, [*overrides, *executor_overrides])
    if over:
        sweep = sweep_from_options(over)
    elif loaded.sweep is not None:
        sweep = loaded.sweep
    else:
        raise InputError(
            "nothing to sweep: give --over KEY=V1,V2,... or a [sweep] table in the spec",
            path=path,
        )
    if any(k in ("experiment", "name") for a in sweep.over for k in a.keys):
        raise InputError("a sweep cannot vary 'experiment' or 'name': sweep one experiment")
    cells = cells_of(sweep)
    specs = {c.id: load_run_file(path, [*overrides, *c.overrides]).spec for c in cells}
    return SweepFile(path, tuple(overrides), sweep, cells, specs, loaded.executor)


def run_sweep(
    loaded: SweepFile,
    out: Path,
    *,
    executor: Executor | None = None,
    progress: bool = True,
) -> Path:
    """Run every cell of a sweep as one plan into ``out``; returns the pooled ``report.md``.

    Args:
        loaded: The sweep (:func:`load_sweep`).
        out: The sweep directory (an existing one is resumed).
        executor: Where the steps run (default: in this process).
        progress: Show progress bars.
    """
    cells, specs = loaded.cells, loaded.specs
    experiment = EXPERIMENTS[specs[cells[0].id].experiment]  # type: ignore[attr-defined]
    plans = {c.id: experiment.plan(specs[c.id]) for c in cells}
    steps = merge_plans(list(plans.values()))
    declared = sum(len(p) for p in plans.values())
    log.info(
        "%d cells declare %d steps; %d distinct (%d shared between cells)",
        len(cells),
        declared,
        len(steps),
        declared - len(steps),
    )
    record = SweepRecord(
        experiment=experiment.name,
        name=loaded.name,
        spec_file=str(loaded.path or builtin_config(DEFAULT_SPEC)),
        overrides=list(loaded.overrides),
        sweep=loaded.sweep,
        cells=[CellRecord.of(c) for c in cells],
        steps_declared=declared,
        steps_unique=len(steps),
    )
    executor = executor or LocalExecutor()
    with Run(out, record, spec_file=SWEEP_FILE, executor=executor.name) as run:
        results = executor.execute(steps, run, progress=progress)
        for cell in cells:
            with Run(out / "cells" / cell.id, specs[cell.id], executor=executor.name) as cell_run:
                experiment.finish(specs[cell.id], cell_run, results.view(plans[cell.id]))
    return write_sweep_report(out)
