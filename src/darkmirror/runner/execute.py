"""Which executor runs a plan, and running it.

``local`` (the default) runs the steps one after the other in this process; ``ray`` runs
each step as a Ray task with the resources it declares, independent steps in parallel
(:mod:`darkmirror.runner.ray_executor`, ``pip install 'darkmirror[ray]'``). Both write
the same step directories, so a run started on one resumes on the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from darkmirror.runner.local import LocalExecutor
from darkmirror.runner.plan import Plan, PlannedStep
from darkmirror.runner.results import PlanResult, StepResults
from darkmirror.runner.run import Run

__all__ = ["Executor", "ExecutorSpec", "build_executor", "execute_plan"]


class Executor(Protocol):
    """Runs planned steps into a run directory."""

    name: str

    def execute(
        self, steps: Sequence[PlannedStep], run: Run, *, progress: bool = False
    ) -> StepResults: ...


class ExecutorSpec(BaseModel):
    """How to run a plan (``[executor]`` in a spec, or ``--executor``/``--address``).

    Args:
        kind: ``"local"`` (this process) or ``"ray"`` (a Ray cluster).
        address: For ``ray``: the cluster to join (``ray://host:10001``, ``auto``); None
            starts a local cluster on this machine for the run.
        max_retries: For ``ray``: retries of a step whose worker died (a step that raises
            is not retried: its error is the run's).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["local", "ray"] = "local"
    address: str | None = None
    max_retries: int = Field(3, ge=0)


def build_executor(spec: ExecutorSpec) -> Executor:
    """The executor a spec names (Ray is imported only for ``ray``)."""
    if spec.kind == "ray":
        # Lazy: Ray is an optional extra.
        from darkmirror.runner.ray_executor import RayExecutor

        return RayExecutor(address=spec.address, max_retries=spec.max_retries)
    return LocalExecutor()


def execute_plan(
    plan: Plan, run: Run, *, progress: bool = False, executor: Executor | None = None
) -> PlanResult:
    """Run every step of ``plan`` that has not finished before (locally by default)."""
    results = (executor or LocalExecutor()).execute(plan.planned(), run, progress=progress)
    return results.view(plan)
