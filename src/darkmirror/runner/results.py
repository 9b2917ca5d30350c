"""What executing steps leaves behind: each stored step's directory and every step's figures."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from darkmirror.runner.plan import Plan

__all__ = ["PlanResult", "StepResults"]


class StepResults:
    """The outputs of executed steps, by step key."""

    def __init__(self) -> None:
        self.dirs: dict[str, Path] = {}
        self.figures: dict[str, Mapping[str, Any]] = {}

    def view(self, plan: Plan) -> PlanResult:
        """The outputs of ``plan``'s steps, by the names that plan gave them."""
        return PlanResult(self, plan)


class PlanResult:
    """The outputs of one plan's steps, by step name (what an experiment's ``finish`` reads)."""

    def __init__(self, results: StepResults, plan: Plan) -> None:
        self._results = results
        self._plan = plan

    def dir(self, name: str) -> Path:
        """The finished directory of step ``name``."""
        return self._results.dirs[self._plan.key(name)]

    @property
    def figures(self) -> Mapping[str, Mapping[str, Any]]:
        """Every step's figures, by name."""
        return {step.name: self._results.figures[self._plan.key(step.name)] for step in self._plan}
