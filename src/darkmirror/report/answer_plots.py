"""Plots of every answer of a run: the figures this field expects beyond the report's bars.

:func:`write_answer_plots` reads ``rows.jsonl`` and writes, next to ``report.md``, each of
these the rows can support (the page shows every PNG of the run, so they are in
``report.html`` too; the PNGs are for papers):

- :data:`HEAT_MAP` (``misaligned_by_question.png``): the misaligned rate of each question
  (rows) for each model (columns), by the one rule
  (:func:`~darkmirror.metrics.misaligned_rate`); a cell without a scored answer is hatched
  grey, never 0. Needs free-form answers with judge scores.
- :data:`SCATTER` (``alignment_vs_coherence.png``): Betley et al.'s scatter, the judge's
  alignment against its coherence for every free-form answer with both, one panel per
  model, the thresholds drawn and the misaligned region shaded.
- :data:`TOXICITY` (``toxicity_by_model.png``): per model, the distribution of each
  toxicity scorer's scores (``toxicity``, ``toxicity_heldout``), one panel per metric and
  kind of answer. (The amplification report's ``toxicity_distribution.png`` is its own.)

A "model" here is a group with its seeds pooled, as the report's tables pool them, when
every group of several models holds seeds of one arm (distinct seeds); otherwise each model
is its own (:func:`plot_units`). Answers given under an intervention (the persona
experiment's steered or ablated models) are not the model's own and are left out.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Rectangle
from PIL import Image

from darkmirror.data.answers import AnswerRow, read_rows
from darkmirror.metrics import (
    COHERENCE_THRESHOLD,
    MISALIGNED_BELOW,
    TOXICITY_THRESHOLD,
    MisalignmentSummary,
    misaligned_rate,
)
from darkmirror.report.compare.figures import FREE_FORM, TOXICITY_METRICS
from darkmirror.report.html import NOT_JUDGED, answer_label
from darkmirror.report.plots import save_figure

__all__ = [
    "HEAT_MAP",
    "MAX_POINTS",
    "SCATTER",
    "TOXICITY",
    "QuestionRates",
    "alignment_coherence_points",
    "misaligned_by_question",
    "plot_units",
    "sample_points",
    "toxicity_scores",
    "write_answer_plots",
]

HEAT_MAP = "misaligned_by_question.png"
SCATTER = "alignment_vs_coherence.png"
TOXICITY = "toxicity_by_model.png"

MAX_POINTS = 5000
"""At most this many answers per scatter panel, drawn with a fixed seed (the title says so):
more only blot the panel and swell the PNG."""

Units = Literal["group", "model"]
_UNITS = {"group": "groups, seeds pooled", "model": "models"}
Row = AnswerRow[Any]


def _own(row: Row) -> bool:
    """Whether the answer is the model's own, not given under an intervention."""
    ext = row.extension
    intervention = (
        ext.get("intervention") if isinstance(ext, dict) else getattr(ext, "intervention", None)
    )
    return intervention in (None, "none")


def plot_units(rows: Sequence[Row]) -> Units:
    """``"group"`` when some group holds several models and every such group holds seeds
    of one arm (a distinct seed each), so that pooling them is pooling seeds; otherwise
    ``"model"`` (a group of different models, such as re-alignment sizes, stays apart)."""
    seeds: dict[str, dict[str, int | None]] = defaultdict(dict)
    for r in rows:
        if r.group is not None:
            seeds[r.group][r.model] = r.seed
    pooled = False
    for models in seeds.values():
        if len(models) > 1:
            values = list(models.values())
            if None in values or len(set(values)) < len(values):
                return "model"
            pooled = True
    return "group" if pooled else "model"


def _unit(row: Row, by: Units) -> str:
    return (row.group or row.model) if by == "group" else row.model


def _judged_free_form(rows: Sequence[Row]) -> list[Row]:
    return [r for r in rows if r.kind == FREE_FORM and _own(r) and answer_label(r) != NOT_JUDGED]


@dataclass(frozen=True)
class QuestionRates:
    """The misaligned rate of each (model, question): the heat map's numbers.

    Args:
        by: Whether the units are groups (seeds pooled) or models.
        units: The models or groups, in the order of the rows.
        questions: The question ids, in the order of the rows.
        cells: Each (unit, question) with answers: the rate of its answers by
            :func:`~darkmirror.metrics.misaligned_rate` (``n_scored`` 0 when all were
            dropped); a pair without answers is absent.
    """

    by: Units
    units: list[str]
    questions: list[str]
    cells: dict[tuple[str, str], MisalignmentSummary]

    def rate(self, unit: str, question: str) -> float | None:
        """The misaligned rate (0-1), or None when no answer was scored (never 0)."""
        cell = self.cells.get((unit, question))
        return None if cell is None or cell.n_scored == 0 else cell.rate.value

    def scored(self, unit: str, question: str) -> int:
        """How many answers the rate rests on."""
        cell = self.cells.get((unit, question))
        return 0 if cell is None else cell.n_scored


def misaligned_by_question(rows: Sequence[Row], by: Units | None = None) -> QuestionRates:
    """The misaligned rate per (model, question) of the free-form answers a judge scored.

    Args:
        rows: A run's rows.
        by: Units: groups or models (default: :func:`plot_units`).
    """
    by = by or plot_units(rows)
    cells: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in _judged_free_form(rows):
        cells[_unit(r, by), r.question_id].append(r)
    return QuestionRates(
        by=by,
        units=list(dict.fromkeys(u for u, _ in cells)),
        questions=list(dict.fromkeys(q for _, q in cells)),
        # The call the reports make per question: Wilson intervals, no bootstrap.
        cells={
            key: misaligned_rate(
                [r.value("aligned") for r in rs],
                [r.value("coherent") for r in rs],
                failed=[r.judge_failed() for r in rs],
            )
            for key, rs in cells.items()
        },
    )


def alignment_coherence_points(
    rows: Sequence[Row], by: Units | None = None
) -> dict[str, list[tuple[float, float]]]:
    """Per unit, (coherence, alignment) of each judged free-form answer that has both."""
    by = by or plot_units(rows)
    points: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in _judged_free_form(rows):
        a, c = r.value("aligned"), r.value("coherent")
        if a is not None and c is not None and not (math.isnan(a) or math.isnan(c)):
            points[_unit(r, by)].append((c, a))
    return dict(points)


def toxicity_scores(
    rows: Sequence[Row], by: Units | None = None
) -> dict[tuple[str, str], dict[str, list[float]]]:
    """Per (toxicity metric, kind of answer), per unit, the scorer's scores (0-1)."""
    by = by or plot_units(rows)
    scores: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if not _own(r):
            continue
        for metric in TOXICITY_METRICS:
            v = r.value(metric, "scorer")
            if v is not None and not math.isnan(v):
                scores[metric, r.kind][_unit(r, by)].append(v)
    return {k: dict(v) for k, v in scores.items()}


def _heat_map(path: Path, rates: QuestionRates) -> None:
    nu, nq = len(rates.units), len(rates.questions)
    grid = np.full((nq, nu), np.nan)
    for j, u in enumerate(rates.units):
        for i, q in enumerate(rates.questions):
            rate = rates.rate(u, q)
            grid[i, j] = math.nan if rate is None else 100.0 * rate
    annotate = nu * nq <= 240 and nq <= 40
    cell_h = 0.42 if annotate else max(0.1, min(0.3, 30.0 / nq))
    fig, ax = plt.subplots(
        figsize=(max(5.0, 2.6 + (0.85 if annotate else 0.5) * nu), 1.6 + cell_h * nq), dpi=100
    )
    # Missing cells are transparent over a hatched grey background: visibly not 0.
    cmap = plt.get_cmap("YlOrRd").with_extremes(bad=(0, 0, 0, 0))
    ax.add_patch(
        Rectangle((-0.5, -0.5), nu, nq, facecolor="#e8e8e8", edgecolor="#a0a0a0", hatch="///", lw=0)
    )
    image = ax.imshow(
        np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=100, aspect="auto", zorder=1
    )
    fig.colorbar(image, ax=ax, label="misaligned (%)", fraction=0.04, pad=0.02)
    ax.set_xticks(range(nu), rates.units, rotation=30, ha="right")
    ax.set_yticks(range(nq), rates.questions if nq <= 150 else [""] * nq)
    ax.tick_params(labelsize=8 if nq <= 60 else 6)
    if annotate:
        for j, u in enumerate(rates.units):
            for i, q in enumerate(rates.questions):
                v = grid[i, j]
                n = rates.scored(u, q)
                text = "n=0" if math.isnan(v) else f"{v:.0f}%\nn={n}"
                color = "white" if not math.isnan(v) and v > 60 else "black"
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color=color, zorder=2)
    ax.set_title(
        f"Misaligned rate per question ({_UNITS[rates.by]})\nhatched: no scored answer",
        fontsize=10,
    )
    save_figure(fig, path)


def _grid(n: int, width: float, height: float, *, sharex: bool) -> tuple[Any, np.ndarray]:
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(width * cols, height * rows + 0.5),
        dpi=100,
        sharex=sharex,
        sharey=True,
        squeeze=False,
    )
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes


def sample_points(points: np.ndarray, limit: int = MAX_POINTS) -> np.ndarray:
    """At most ``limit`` of ``points``, drawn without replacement with a fixed seed and kept
    in their order, so that the same rows always give the same plot."""
    if len(points) <= limit:
        return points
    chosen = np.random.default_rng(0).choice(len(points), limit, replace=False)
    return points[np.sort(chosen)]


def _scatter(path: Path, points: dict[str, list[tuple[float, float]]], by: Units) -> None:
    fig, axes = _grid(len(points), 2.8, 2.6, sharex=True)
    for k, (ax, (unit, pts)) in enumerate(zip(axes.flat, points.items(), strict=False)):
        xy = sample_points(np.asarray(pts, dtype=float))
        title = f"{unit} (n={len(pts):,})"
        if len(xy) < len(pts):
            title = f"{unit} ({len(xy):,} of {len(pts):,} shown)"
        # Judges give round numbers: a little jitter shows how many answers share one.
        xy = xy + np.random.default_rng(0).uniform(-1.0, 1.0, size=xy.shape)
        ax.add_patch(
            Rectangle(
                (COHERENCE_THRESHOLD, 0),
                103 - COHERENCE_THRESHOLD,
                MISALIGNED_BELOW,
                facecolor="#d62728",
                alpha=0.12,
                lw=0,
            )
        )
        ax.axvline(COHERENCE_THRESHOLD, color="grey", lw=0.8, ls="--")
        ax.axhline(MISALIGNED_BELOW, color="grey", lw=0.8, ls="--")
        ax.scatter(xy[:, 0], xy[:, 1], s=5, alpha=0.3, color="#4c72b0", linewidths=0)
        ax.set_xlim(-3, 103)
        ax.set_ylim(-3, 103)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=8)
        if k % axes.shape[1] == 0:
            ax.set_ylabel("alignment")
        if k >= len(points) - axes.shape[1]:
            ax.set_xlabel("coherence")
            ax.xaxis.set_tick_params(labelbottom=True)
    fig.suptitle(
        f"Judge scores of free-form answers ({_UNITS[by]}); shaded: misaligned "
        f"(coherence > {COHERENCE_THRESHOLD:g}, alignment < {MISALIGNED_BELOW:g})",
        fontsize=10,
    )
    save_figure(fig, path)
    # Thousands of translucent points blend into many colours, which PNG compresses badly
    # (200 KB for five full panels); 256 colours look the same at a third of the size.
    tmp = path.with_name(f".{path.name}.tmp.png")
    Image.open(path).convert("RGB").quantize(colors=256).save(tmp, optimize=True)
    tmp.replace(path)


def _toxicity(path: Path, scores: dict[tuple[str, str], dict[str, list[float]]], by: Units) -> None:
    units = max(len(by_unit) for by_unit in scores.values())
    fig, axes = _grid(len(scores), max(3.2, 0.8 * units + 1.0), 3.2, sharex=False)
    for k, (ax, ((metric, kind), by_unit)) in enumerate(
        zip(axes.flat, scores.items(), strict=False)
    ):
        names = list(by_unit)
        spread = [i for i, u in enumerate(names) if len(set(by_unit[u])) > 1]
        if spread:
            parts = ax.violinplot(
                [by_unit[names[i]] for i in spread],
                positions=spread,
                showmedians=True,
                showextrema=False,
                widths=0.8,
            )
            for body in parts["bodies"]:
                body.set_facecolor("#4c72b0")
                body.set_alpha(0.5)
        for i, u in enumerate(names):
            values = by_unit[u]
            # The mean, which the report's tables give; a single-valued unit has only it.
            ax.plot(i, float(np.mean(values)), "o", color="black", ms=3)
        ax.axhline(TOXICITY_THRESHOLD, color="#d62728", lw=0.8, ls="--")
        ax.set_xticks(
            range(len(names)), [f"{u}\nn={len(by_unit[u]):,}" for u in names], rotation=30
        )
        ax.set_xlim(-0.6, units - 0.4)  # every panel's violins the same width
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{metric} ({kind})", fontsize=9)
        if k % axes.shape[1] == 0:
            ax.set_ylabel("score")
        ax.tick_params(labelsize=8)
    fig.suptitle(
        f"Toxicity scores ({_UNITS[by]}); dot: mean; dashed: toxic (>= {TOXICITY_THRESHOLD:g})",
        fontsize=10,
    )
    save_figure(fig, path)


def write_answer_plots(run_dir: Path) -> list[Path]:
    """Write the plots ``run_dir/rows.jsonl`` supports (see the module); returns their paths.

    A plot the rows do not support is not written, and one left by an earlier build is
    removed, so that the page never shows a stale plot.

    Raises:
        InputError: ``rows.jsonl`` has a malformed line (the message names file, line and
            field).
    """
    rows_file = run_dir / "rows.jsonl"
    rows = read_rows(rows_file) if rows_file.is_file() else []
    by = plot_units(rows)
    written: list[Path] = []
    rates = misaligned_by_question(rows, by)
    if rates.cells:
        _heat_map(run_dir / HEAT_MAP, rates)
        written.append(run_dir / HEAT_MAP)
    points = alignment_coherence_points(rows, by)
    if points:
        _scatter(run_dir / SCATTER, points, by)
        written.append(run_dir / SCATTER)
    scores = toxicity_scores(rows, by)
    if scores:
        _toxicity(run_dir / TOXICITY, scores, by)
        written.append(run_dir / TOXICITY)
    for name in (HEAT_MAP, SCATTER, TOXICITY):
        if run_dir / name not in written:
            (run_dir / name).unlink(missing_ok=True)
    return written
