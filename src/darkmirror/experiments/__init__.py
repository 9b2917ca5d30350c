"""The experiments, registered once: each name maps to its spec, plan and report.

``darkmirror run SPEC`` reads the spec's ``experiment``, builds the experiment's plan, runs
it (:func:`run_experiment`) and writes the report; ``darkmirror report RUN`` rebuilds the
report of a finished run (:func:`rebuild_report`). Both also write ``report.html``, the
report with a browser over every answer, after ``report.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from darkmirror.errors import DarkmirrorError
from darkmirror.experiments import (
    amplification,
    misalignment,
    persona,
    stress,
    subliminal,
    subliminal_mlp,
)
from darkmirror.experiments.experiment import Experiment
from darkmirror.report.html import write_report_page
from darkmirror.runner import Executor, Run, execute_plan

__all__ = ["EXPERIMENTS", "Experiment", "rebuild_report", "run_experiment"]

EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        misalignment.EXPERIMENT,
        amplification.EXPERIMENT,
        subliminal.EXPERIMENT,
        subliminal_mlp.EXPERIMENT,
        stress.EXPERIMENT,
        persona.EXPERIMENT,
    )
}
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
    with Run(out, spec) as run:
        result = execute_plan(plan, run, progress=progress, executor=executor)
        report = experiment.finish(spec, run, result)
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
    write_report_page(run_dir)
    return report
