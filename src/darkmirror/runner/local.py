"""The local executor: a plan's steps one after the other, in this process.

Each stored step goes through :meth:`~darkmirror.runner.run.Run.step`: a finished step is
reused, an unfinished one is written under a temporary name and renamed when complete, so
Ctrl-C or a crash never leaves a half-written step and the same command resumes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from darkmirror.runner.plan import Plan, Step, StepContext
from darkmirror.runner.run import Run

__all__ = ["PlanResult", "execute_plan"]

log = logging.getLogger(__name__)


class PlanResult:
    """What a finished plan left: each stored step's directory and every step's figures."""

    def __init__(self) -> None:
        self.dirs: dict[str, Path] = {}
        self.figures: dict[str, Mapping[str, Any]] = {}

    def dir(self, name: str) -> Path:
        """The finished directory of step ``name``."""
        return self.dirs[name]


def execute_plan(plan: Plan, run: Run, *, progress: bool = False) -> PlanResult:
    """Run every step of ``plan`` that has not finished before, in order.

    Args:
        plan: The steps.
        run: The run directory.
        progress: Show progress bars inside steps.
    """
    result = PlanResult()
    run.plan(len(plan))
    for step in plan:
        ctx = StepContext(
            out=run.root,
            deps={d: result.dirs[d] for d in step.deps if d in result.dirs},
            figures={d: result.figures[d] for d in step.deps},
            progress=progress,
        )
        if not step.store:
            figures = dict(step.fn(ctx) or {})
            run.announce(step.name, str(figures.get("detail", "")))
            result.figures[step.name] = figures
            continue
        final = run.step(step.name, plan.hashed_inputs(step), _bound(step, ctx))
        result.dirs[step.name] = final
        result.figures[step.name] = json.loads((final / "step.json").read_text())["figures"]
    return result


def _bound(step: Step, ctx: StepContext):
    def fn(tmp: Path) -> Mapping[str, Any] | None:
        return step.fn(StepContext(tmp, ctx.deps, ctx.figures, ctx.progress))

    return fn
