"""The experiments, registered once: each name maps to its spec, plan and report.

``darkmirror run SPEC`` reads the spec's ``experiment``, builds the experiment's plan, runs
it (:func:`run_experiment`) and writes the report; ``darkmirror report RUN`` rebuilds the
report of a finished run (:func:`rebuild_report`). Both also write the answers' plots
(:func:`~darkmirror.report.answer_plots.write_answer_plots`) and ``report.html``, the report
with a browser over every answer, after ``report.md``.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator, MutableMapping
from pathlib import Path

from pydantic import BaseModel

from darkmirror.errors import DarkmirrorError
from darkmirror.experiments.experiment import Experiment
from darkmirror.report.answer_plots import write_answer_plots
from darkmirror.report.html import write_report_page
from darkmirror.runner import Executor, Run, execute_plan

__all__ = ["EXPERIMENTS", "Experiment", "rebuild_report", "run_experiment"]

_PACKAGES = {
    "emergent_misalignment": "misalignment",
    "toxicity_amplification": "amplification",
    "subliminal": "subliminal",
    "subliminal_mlp": "subliminal_mlp",
    "stress": "stress",
    "persona": "persona",
}


class _Registry(MutableMapping[str, Experiment]):
    """The experiments by name, each package imported when it is first asked for: a run
    imports its own experiment's modules only (the persona and MLP experiments bring torch
    at import; a Ray driver that imports no torch starts its workers sooner). An experiment
    registered from elsewhere (a plugin, a test) is kept beside the built-in ones."""

    def __init__(self) -> None:
        self._added: dict[str, Experiment] = {}

    def __getitem__(self, name: str) -> Experiment:
        if name in self._added:
            return self._added[name]
        if name not in _PACKAGES:
            raise KeyError(name)
        module = importlib.import_module(f"darkmirror.experiments.{_PACKAGES[name]}")
        experiment: Experiment = module.EXPERIMENT
        return experiment

    def __setitem__(self, name: str, experiment: Experiment) -> None:
        self._added[name] = experiment

    def __delitem__(self, name: str) -> None:
        del self._added[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*_PACKAGES, *self._added]))

    def __len__(self) -> int:
        return len(set(_PACKAGES) | set(self._added))

    def __contains__(self, name: object) -> bool:
        return name in _PACKAGES or name in self._added


EXPERIMENTS: MutableMapping[str, Experiment] = _Registry()
"""Every experiment by its ``experiment = "..."`` name."""


def run_experiment(
    spec: BaseModel, out: Path, *, progress: bool = True, executor: Executor | None = None
) -> Path:
    """Run a validated spec into the run directory ``out``; returns ``report.md``'s path.

    A run directory that exists is resumed: finished steps are reused, whichever executor
    wrote them.

    Args:
        spec: The experiment's spec.
        out: The run directory.
        progress: Show progress bars.
        executor: Where the steps run (default: in this process, one after the other).
    """
    experiment = EXPERIMENTS[spec.experiment]  # type: ignore[attr-defined]
    plan = experiment.plan(spec)
    with Run(out, spec, executor=executor.name if executor else "local") as run:
        result = execute_plan(plan, run, progress=progress, executor=executor)
        report = experiment.finish(spec, run, result)
        write_answer_plots(out)
        write_report_page(out)
        return report


def rebuild_report(run_dir: Path) -> Path:
    """Rebuild summary, tables, plots and ``report.html`` of a finished run from its files
    alone.

    Raises:
        DarkmirrorError: Not a run directory, or an unknown experiment.
    """
    spec_file = run_dir / "spec.json"
    if not spec_file.is_file():
        raise DarkmirrorError(f"'{run_dir}' has no spec.json: not a darkmirror run directory")
    name = json.loads(spec_file.read_text()).get("experiment")
    if name not in EXPERIMENTS:
        raise DarkmirrorError(f"{spec_file}: unknown experiment {name!r}")
    report = EXPERIMENTS[name].rebuild(run_dir)
    write_answer_plots(run_dir)
    write_report_page(run_dir)
    return report
