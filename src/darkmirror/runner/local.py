"""The local executor: the steps one after the other, in this process.

Each stored step goes through :meth:`~darkmirror.runner.run.Run.step`: a finished step is
reused, an unfinished one is written under a temporary name and renamed when complete, so
Ctrl-C or a crash never leaves a half-written step and the same command resumes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from darkmirror.runner.plan import PlannedStep, StepContext
from darkmirror.runner.results import StepResults
from darkmirror.runner.run import Run
from darkmirror.runner.step_store import finished_figures

__all__ = ["LocalExecutor", "step_context"]


def step_context(
    planned: PlannedStep, results: StepResults, out: Path, progress: bool
) -> StepContext:
    """What a step gets: its dependencies' directories and figures, by the names it knows."""
    return StepContext(
        out=out,
        deps={n: results.dirs[k] for n, k in planned.dep_keys.items() if k in results.dirs},
        figures={n: results.figures[k] for n, k in planned.dep_keys.items()},
        progress=progress,
    )


class LocalExecutor:
    """Runs steps in this process, in order (the default)."""

    name = "local"

    def execute(
        self, steps: Sequence[PlannedStep], run: Run, *, progress: bool = False
    ) -> StepResults:
        """Run every step that has not finished before; returns every step's outputs."""
        results = StepResults()
        run.plan(len(steps))
        for planned in steps:
            step = planned.step
            ctx = step_context(planned, results, run.root, progress)
            if not step.store:
                figures = dict(step.fn(ctx) or {})
                run.announce(step.name, str(figures.get("detail", "")))
                results.figures[planned.key] = figures
                continue
            final = run.step(step.name, planned.hashed_inputs, _bound(planned, ctx))
            results.dirs[planned.key] = final
            results.figures[planned.key] = finished_figures(final) or {}
        return results


def _bound(planned: PlannedStep, ctx: StepContext):
    def fn(tmp: Path) -> Mapping[str, Any] | None:
        return planned.step.fn(StepContext(tmp, ctx.deps, ctx.figures, ctx.progress))

    return fn
