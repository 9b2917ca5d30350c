"""Runs: a run directory, the plan of steps an experiment declares, and its executor."""

from darkmirror.runner.local import PlanResult, execute_plan
from darkmirror.runner.plan import Plan, Resources, Step, StepContext
from darkmirror.runner.run import Run, environment, load_finished_run

__all__ = [
    "Plan",
    "PlanResult",
    "Resources",
    "Run",
    "Step",
    "StepContext",
    "environment",
    "execute_plan",
    "load_finished_run",
]
