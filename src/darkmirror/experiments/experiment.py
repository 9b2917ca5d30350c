"""What an experiment is to the rest of darkmirror: a spec, a plan, and a report.

Each experiment is a package (``experiments/<name>/``) with ``spec.py`` (its pydantic spec),
``run.py`` (the plan of steps it declares, and what it does with their outputs) and
``report.py`` (summary, tables and plots from the run's rows and spec alone), and exports
one :class:`Experiment`; :mod:`darkmirror.experiments` registers them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from darkmirror.runner import Plan, PlanResult, Run

__all__ = ["Experiment"]


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
    """

    name: str
    spec: type[BaseModel]
    plan: Callable[[Any], Plan]
    finish: Callable[[Any, Run, PlanResult], Path]
    rebuild: Callable[[Path], Path]
    summary: str
