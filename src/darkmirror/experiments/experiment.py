"""What an experiment is to the rest of darkmirror: a spec, a plan, and a report.

Each experiment is a package (``experiments/<name>/``) with ``spec.py`` (its pydantic spec),
``run.py`` (the plan of steps it declares, and what it does with their outputs) and
``report.py`` (summary, tables and plots from the run's rows and spec alone), and exports
one :class:`Experiment`; :mod:`darkmirror.experiments` registers them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from darkmirror.runner import Plan, PlanResult, Run

__all__ = ["Experiment", "Pooled", "SweepCell"]


@dataclass(frozen=True)
class SweepCell:
    """A finished cell of a sweep, as an experiment's ``pool`` reads it.

    Args:
        id: The cell's name (``organism-1``).
        unit: Its replicate label (the organism), resampled first when pooling.
        run_dir: Its run directory (``rows.jsonl``, ``summary.json``, ...).
    """

    id: str
    unit: str
    run_dir: Path


@dataclass(frozen=True)
class Pooled:
    """An experiment's headline effects pooled over a sweep's replicate cells.

    Args:
        summary: JSON-ready figures (``summary.json`` of the sweep, per condition).
        markdown: Tables for the sweep's ``report.md``.
    """

    summary: dict[str, Any]
    markdown: str


@dataclass(frozen=True)
class Experiment:
    """One experiment.

    Args:
        name: The ``experiment = "..."`` value of its specs.
        spec: Its spec model.
        plan: The steps a spec declares.
        finish: Gathers the finished steps' outputs into the run directory and writes the
            report; returns the path of ``report.md``.
        rebuild: Rewrites summary, tables and plots of a finished run directory from its
            files alone; returns the path of ``report.md``.
        summary: One line for ``--help`` and the docs.
        pool: Pools the headline effects of a sweep's cells (replicates of the same
            experiment) with intervals that resample replicates first; None when the
            experiment defines none (its sweep report then lists each cell's report).
    """

    name: str
    spec: type[BaseModel]
    plan: Callable[[Any], Plan]
    finish: Callable[[Any, Run, PlanResult], Path]
    rebuild: Callable[[Path], Path]
    summary: str
    pool: Callable[[Sequence[SweepCell]], Pooled] | None = None
