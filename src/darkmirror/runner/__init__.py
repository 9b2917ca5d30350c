"""Runs: a run directory, the plan of steps an experiment declares, and its executors."""

from darkmirror.runner.execute import Executor, ExecutorSpec, build_executor, execute_plan
from darkmirror.runner.local import LocalExecutor
from darkmirror.runner.plan import Plan, PlannedStep, Resources, Step, StepContext, merge_plans
from darkmirror.runner.results import PlanResult, StepResults
from darkmirror.runner.run import Run, environment, load_finished_run

__all__ = [
    "Executor",
    "ExecutorSpec",
    "LocalExecutor",
    "Plan",
    "PlanResult",
    "PlannedStep",
    "Resources",
    "Run",
    "Step",
    "StepContext",
    "StepResults",
    "build_executor",
    "environment",
    "execute_plan",
    "load_finished_run",
    "merge_plans",
]
