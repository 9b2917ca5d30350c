"""Subliminal learning in a small MLP: a student learns digits from noise through logits
that never saw a digit label.

The set-up follows Cloud et al. (2025), "Subliminal learning", section 6, scaled from MNIST
to scikit-learn's bundled 8x8 digits (:mod:`.digits`); the networks and their training are
in :mod:`.training`, one (seed, m) cell in :mod:`.cell`. Published (MNIST, m = 3): the
same-init student reaches test accuracy 0.54, the cross-init student 0.10 (chance); accuracy
grows with m. Here the sweep over m, the seeds, the teacher and the untrained initial network
are all in one table (:mod:`.report`).

Teacher and students take the same number of Adam steps, as in the paper (5 epochs of
60,000 images each), here 300 by default.

The plan: the digits (loaded and hashed, not stored in the run), then one step per (seed, m)
that trains the teacher and both students and measures all four networks. The experiment
samples no answers: ``rows.jsonl`` is empty and the networks' accuracies are the run's
``measurements.jsonl``.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Any

from darkmirror.data.answers import write_rows
from darkmirror.data.measurements import read_measurements, write_measurements
from darkmirror.experiments.subliminal_mlp.cell import NetworkAccuracy, run_cell
from darkmirror.experiments.subliminal_mlp.digits import DigitsSplit, load_digits_split
from darkmirror.experiments.subliminal_mlp.report import write_report
from darkmirror.experiments.subliminal_mlp.spec import SubliminalMLPSpec
from darkmirror.runner import Plan, PlanResult, Run, StepContext

__all__ = ["cell_step_name", "finish", "plan"]

log = logging.getLogger(__name__)


def cell_step_name(seed: int, m: int) -> str:
    """The name of the step of one (seed, m) cell."""
    return f"cell-s{seed}-m{m}"


def plan(spec: SubliminalMLPSpec) -> Plan:
    """The digits, then one cell per (seed, m) (see the module docstring)."""
    # Loaded here, not in a step: the cells' hashes cover the data's SHA-256, so a change
    # in scikit-learn's bundled digits reruns them.
    data = load_digits_split(spec.test_fraction, spec.split_seed)
    steps = Plan()
    digits = steps.add(
        "digits",
        {"test_fraction": spec.test_fraction, "split_seed": spec.split_seed},
        partial(_digits, data=data),
        store=False,
    )
    shared = {
        "data": data.sha256,
        "hidden_sizes": spec.hidden_sizes,
        "teacher": spec.teacher.model_dump(),
        "student": spec.student.model_dump(),
    }
    for seed in spec.seeds:
        for m in spec.m_values:
            steps.add(
                cell_step_name(seed, m),
                {**shared, "seed": seed, "m": m},
                partial(_cell, data=data, spec=spec, seed=seed, m=m),
                deps=(digits,),
            )
    return steps


def _digits(ctx: StepContext, *, data: DigitsSplit) -> dict[str, Any]:
    record = data.record()
    return {**record, "detail": f"{record['train']} train / {record['test']} test images"}


def _cell(
    ctx: StepContext, *, data: DigitsSplit, spec: SubliminalMLPSpec, seed: int, m: int
) -> dict[str, Any]:
    cell = run_cell(data, spec, seed, m)
    write_measurements(ctx.out / "measurements.jsonl", cell)
    if ctx.progress:
        accuracies = ", ".join(f"{r.model} {r.accuracy:.3f}" for r in cell)
        log.info("seed %d, m = %d: %s", seed, m, accuracies)
    return {r.model: r.accuracy for r in cell}


def finish(spec: SubliminalMLPSpec, run: Run, result: PlanResult) -> Path:
    """Gather every cell's measurements into the run directory and write the report."""
    measurements: list[NetworkAccuracy] = []
    for seed in spec.seeds:
        for m in spec.m_values:
            step = result.dir(cell_step_name(seed, m))
            measurements += read_measurements(step / "measurements.jsonl", NetworkAccuracy)
    write_measurements(run.root / "measurements.jsonl", measurements)
    # No sampled answers: an empty rows.jsonl keeps the layout every run directory has.
    write_rows(run.root / "rows.jsonl", [])
    record = {k: v for k, v in result.figures["digits"].items() if k != "detail"}
    run.record_datasets({"digits": record})
    return write_report(run.root, spec, measurements)
