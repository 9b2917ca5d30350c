"""A run's plan: the steps it declares, with their inputs, dependencies and resources.

An experiment does not run its steps itself: it declares them, and an executor runs the
plan (:mod:`darkmirror.runner.local` in this process, one after the other; a distributed
executor can run the same plan elsewhere). A step is a function of what it declares:

* ``inputs``: everything that determines its output apart from its dependencies (JSON);
* ``deps``: the steps whose output it reads (it gets their finished directories);
* ``resources``: what it needs to run (CPUs, GPUs, memory), for a scheduler.

Its directory name is ``<name>-<hash>``, the hash of its inputs and of its dependencies'
own names: a changed input reruns the step and everything downstream of it, and nothing
else. Progress totals are the plan's length, so they never drift from the loops.

A step with ``store=False`` keeps its output elsewhere (the organism, cached across runs):
it runs every time (cheaply, when its cache is warm) and hands its figures to its
dependants instead of a directory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from darkmirror.hashing import content_hash
from darkmirror.resources import Resources

ONE_CPU = Resources()
"""What a step asks for unless it says otherwise."""

__all__ = ["Plan", "PlannedStep", "Resources", "Step", "StepContext", "StepFn", "merge_plans"]


@dataclass(frozen=True)
class StepContext:
    """What a running step gets.

    Args:
        out: The (temporary) directory to write its output into.
        deps: The finished directory of each stored dependency, by step name.
        figures: The figures of every dependency (``step.json`` figures, or what an
            unstored step returned), by step name.
        progress: Whether to show progress bars.
    """

    out: Path
    deps: Mapping[str, Path] = field(default_factory=dict)
    figures: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    progress: bool = False

    def dep(self, name: str) -> Path:
        """The finished directory of dependency ``name``."""
        return self.deps[name]


StepFn = Callable[[StepContext], Mapping[str, Any] | None]
"""Writes the step's files into ``ctx.out`` and may return figures (stored in ``step.json``)."""


@dataclass(frozen=True)
class Step:
    """One step of a plan (see the module docstring).

    Args:
        name: Unique within the plan (``finetune-insecure-s0``).
        inputs: What determines its output besides its dependencies; JSON-serialisable.
        fn: The work.
        deps: Names of the steps it reads.
        resources: What it needs.
        store: Whether its output is a directory of the run (False: kept elsewhere).
    """

    name: str
    inputs: Mapping[str, Any]
    fn: StepFn
    deps: tuple[str, ...] = ()
    resources: Resources = ONE_CPU
    store: bool = True


@dataclass(frozen=True)
class PlannedStep:
    """A step with what identifies it in any plan: its key and its dependencies' keys.

    Args:
        key: ``<name>-<hash>``, the step's directory name; two plans that declare the same
            step (a sweep's cells sharing an organism) give it the same key.
        step: The step.
        dep_keys: Each dependency's name (as the step knows it) -> its key.
        hashed_inputs: What the key's hash covers.
    """

    key: str
    step: Step
    dep_keys: Mapping[str, str]
    hashed_inputs: Mapping[str, Any]


def merge_plans(plans: list[Plan]) -> list[PlannedStep]:
    """The steps of several plans, each once (by key), dependencies first: a sweep's cells
    run as one plan that shares every step they have in common."""
    seen: dict[str, PlannedStep] = {}
    for plan in plans:
        for planned in plan.planned():
            seen.setdefault(planned.key, planned)
    return list(seen.values())


class Plan:
    """Steps in an order that runs every dependency first (the order they were added)."""

    def __init__(self) -> None:
        self._steps: dict[str, Step] = {}
        self._keys: dict[str, str] = {}

    def add(
        self,
        name: str,
        inputs: Mapping[str, Any],
        fn: StepFn,
        *,
        deps: tuple[str, ...] | list[str] = (),
        resources: Resources = ONE_CPU,
        store: bool = True,
    ) -> str:
        """Declare a step; returns its name, for the steps that depend on it.

        Raises:
            ValueError: A name used twice, or a dependency not declared before.
        """
        if name in self._steps:
            raise ValueError(f"step {name!r} is declared twice")
        missing = [d for d in deps if d not in self._steps]
        if missing:
            raise ValueError(f"step {name!r} depends on undeclared step(s) {missing}")
        step = Step(name, dict(inputs), fn, tuple(deps), resources, store)
        self._steps[name] = step
        self._keys[name] = f"{name}-{content_hash(self.hashed_inputs(step))}"
        return name

    def hashed_inputs(self, step: Step) -> dict[str, Any]:
        """Everything the step's hash covers: its inputs and its dependencies' keys."""
        if not step.deps:
            return dict(step.inputs)
        return {**step.inputs, "_deps": {d: self._keys[d] for d in step.deps}}

    def key(self, name: str) -> str:
        """``<name>-<hash>``: the step's directory name."""
        return self._keys[name]

    def planned(self) -> list[PlannedStep]:
        """Every step with its key and its dependencies' keys, in order."""
        return [
            PlannedStep(
                self._keys[step.name],
                step,
                {d: self._keys[d] for d in step.deps},
                self.hashed_inputs(step),
            )
            for step in self
        ]

    def __getitem__(self, name: str) -> Step:
        return self._steps[name]

    def __iter__(self) -> Iterator[Step]:
        return iter(self._steps.values())

    def __len__(self) -> int:
        return len(self._steps)

    def __contains__(self, name: object) -> bool:
        return name in self._steps
