"""A sweep's report: its cells, and the experiment's effects pooled over replicate cells.

Cells that differ only in replicate axes (organism seeds) are pooled by the experiment's
``pool`` (:class:`~darkmirror.experiments.experiment.Experiment`); cells that differ in a
condition (a learning rate) are pooled separately, one section per condition. Everything
is recomputed from the cells' run directories, so ``darkmirror report SWEEP_DIR`` rebuilds
it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from darkmirror.errors import DarkmirrorError
from darkmirror.experiments import EXPERIMENTS
from darkmirror.experiments.experiment import SweepCell
from darkmirror.report.answer_plots import write_answer_plots
from darkmirror.report.format import markdown_table, write_text_atomic
from darkmirror.report.html import write_report_page
from darkmirror.sweep.record import SWEEP_FILE, CellRecord, SweepRecord

__all__ = ["is_sweep_dir", "write_sweep_report"]


def is_sweep_dir(path: Path) -> bool:
    return (path / SWEEP_FILE).is_file()


def _read_record(out: Path) -> SweepRecord:
    if not is_sweep_dir(out):
        raise DarkmirrorError(f"'{out}' has no {SWEEP_FILE}: not a darkmirror sweep directory")
    record = SweepRecord.model_validate_json((out / SWEEP_FILE).read_text())
    unfinished = [c.id for c in record.cells if not (out / "cells" / c.id / "report.md").is_file()]
    if unfinished:
        raise DarkmirrorError(
            f"'{out}' is not a finished sweep: no report yet for cell(s) {', '.join(unfinished)}"
            " (run the same sweep command again to finish it)"
        )
    return record


def _write_cell_pages(out: Path, record: SweepRecord) -> None:
    """Each cell's ``report.html`` where it is missing or older than the cell's report (a
    cell that already has its page costs nothing)."""
    for cell in record.cells:
        cell_dir = out / "cells" / cell.id
        page, report = cell_dir / "report.html", cell_dir / "report.md"
        if not page.is_file() or (
            report.is_file() and page.stat().st_mtime < report.stat().st_mtime
        ):
            write_answer_plots(cell_dir)
            write_report_page(cell_dir)


def write_sweep_report(out: Path) -> Path:
    """Write ``summary.json``, ``report.md`` and ``report.html`` of a finished sweep
    directory, and the page of each cell that lacks an up-to-date one."""
    record = _read_record(out)
    experiment = EXPERIMENTS[record.experiment]
    by_condition: dict[str, list[CellRecord]] = defaultdict(list)
    for cell in record.cells:
        by_condition[cell.condition].append(cell)

    pooled: dict[str, Any] = {}
    sections: list[str] = []
    for condition, cells in by_condition.items() if experiment.pool else ():
        title = condition or "all cells"
        result = experiment.pool(  # type: ignore[misc]
            [SweepCell(c.id, c.replicate or c.id, out / "cells" / c.id) for c in cells]
        )
        pooled[title] = result.summary
        sections += [f"## Pooled: {title}", "", result.markdown]

    axes = record.sweep.over
    summary = {
        "experiment": record.experiment,
        "name": record.name,
        "cells": [c.id for c in record.cells],
        "replicates": [a.label for a in axes if a.is_replicate],
        "conditions": [a.label for a in axes if not a.is_replicate],
        "steps": {
            "declared": record.steps_declared,
            "distinct": record.steps_unique,
            "shared": record.steps_declared - record.steps_unique,
        },
        "pooled": pooled,
    }
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")

    grid = "; ".join(
        f"{a.label} ({'replicate' if a.is_replicate else 'condition'}: "
        f"{' + '.join(a.keys)} = {', '.join(map(str, a.values))})"
        for a in axes
    )
    cell_rows = [
        [c.id, *(str(c.values[a.label]) for a in axes), f"[report](cells/{c.id}/report.md)"]
        for c in record.cells
    ]
    lines = [
        f"# {record.name}: sweep of {record.experiment}",
        "",
        f"{len(record.cells)} cells over {grid}. The cells declare {record.steps_declared} steps; "
        f"{record.steps_unique} are distinct ({record.steps_declared - record.steps_unique} "
        "shared between cells, run once).",
        "",
        "## Cells",
        "",
        markdown_table(["cell", *(a.label for a in axes), "report"], cell_rows),
        "",
    ]
    if experiment.pool is None:
        lines += [
            f"The {record.experiment} experiment defines no pooled effects: read each cell's report.",
            "",
        ]
    report = out / "report.md"
    write_text_atomic(report, "\n".join(lines + sections))
    _write_cell_pages(out, record)  # first, so the sweep's page links to the cells' pages
    write_report_page(out)
    return report
