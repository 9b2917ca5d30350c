"""The figures two runs share: each side's estimate, and the difference B - A.

Every number is a metric of :mod:`darkmirror.metrics` over the rows of ``rows.jsonl``, so
a comparison works for any experiment and for stress runs alike, and reads the misaligned
rule where every report reads it (:func:`~darkmirror.metrics.misaligned_rate`,
:func:`~darkmirror.metrics.misaligned_label`). What is compared is a *unit*: a group
present in both runs (every seed of ``insecure``; ``model`` and ``baseline`` of a stress
test), then, among the rows no shared group covers, a model name present in both.

The difference resamples what varies between the runs. Both runs were asked (some of) the
same questions, so the questions are crossed with the runs, not nested in them: one
resample of the shared questions serves both sides (``hierarchical_difference(...,
paired=True)``), and each side's seeds are resampled on their own (a seed of one run has
no counterpart in the other). The p-value is the paired sign-flip test over the same
questions, each question's mean pooling its seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from darkmirror.data.answers import AnswerRow
from darkmirror.metrics import (
    Estimate,
    MisalignmentSummary,
    Nested,
    cluster_means,
    hierarchical_difference,
    is_coherent,
    is_missing,
    mean_toxicity,
    misaligned_label,
    misaligned_rate,
    paired_permutation_p,
)
from darkmirror.report.html import NOT_JUDGED, answer_label

__all__ = [
    "JUDGE_METRICS",
    "TOXICITY_METRICS",
    "FigureDifference",
    "FigureSpec",
    "SideFigure",
    "Unit",
    "compare_figure",
    "figure_specs",
    "match_units",
    "side_figure",
]

Row = AnswerRow[Any]

JUDGE_METRICS = ("aligned", "coherent")
"""The judge's metrics the misaligned rate and the coherence rate read."""
TOXICITY_METRICS = ("toxicity", "toxicity_heldout")
"""Scorer metrics compared as a mean (0-1): the scorer's, and the held-out scorer's."""
FREE_FORM = "free_form"
"""The kind of the misalignment questions' answers (self-reports and code answers carry a
coherence score too, but are not in the misaligned rate)."""


@dataclass(frozen=True)
class Unit:
    """What is compared: a group of both runs, or a model of both runs outside them."""

    by: Literal["group", "model"]
    name: str

    def __str__(self) -> str:
        return f"{self.by} {self.name}"


def _ordered(values: Sequence[str | None]) -> list[str]:
    return [v for v in dict.fromkeys(values) if v]


def match_units(
    a: Sequence[Row], b: Sequence[Row]
) -> tuple[dict[Unit, tuple[list[Row], list[Row]]], list[str], list[str]]:
    """The units both runs have, with each side's rows, and what only one side has.

    Groups first (a group pools its seeds); then, among the rows no shared group covers,
    model names both runs have. Units are in the order of ``b``'s rows.

    Returns:
        The units, and for each side the groups or models left out (``group x``,
        ``model y``).
    """
    groups_a = {r.group for r in a if r.group}
    groups = [g for g in _ordered([r.group for r in b]) if g in groups_a]
    rest_a = [r for r in a if r.group not in groups]
    rest_b = [r for r in b if r.group not in groups]
    in_a = {r.model for r in rest_a}
    models = [m for m in _ordered([r.model for r in rest_b]) if m in in_a]
    units: dict[Unit, tuple[list[Row], list[Row]]] = {}
    for g in groups:
        units[Unit("group", g)] = ([r for r in a if r.group == g], [r for r in b if r.group == g])
    for m in models:
        units[Unit("model", m)] = (
            [r for r in rest_a if r.model == m],
            [r for r in rest_b if r.model == m],
        )

    def left_out(rows: Sequence[Row]) -> list[str]:
        return _ordered(
            [
                f"group {r.group}" if r.group else f"model {r.model}"
                for r in rows
                if r.group not in groups and r.model not in models
            ]
        )

    return units, left_out(a), left_out(b)


@dataclass(frozen=True)
class FigureSpec:
    """A figure of a unit, over the answers of one kind.

    Args:
        key: ``misaligned_rate``, ``coherence`` or a toxicity metric (``toxicity``).
        kind: The rows' ``kind`` it is over (``free_form``, ``continuation``).
        family: The judge or scorer whose scores it reads, which both runs must share:
            ``judge`` or the toxicity metric.
    """

    key: str
    kind: str
    family: str

    @property
    def title(self) -> str:
        titles = {"misaligned_rate": "misaligned rate", "coherence": "coherent"}
        name = titles.get(self.key) or f"mean {self.key.replace('_', ' ')}"
        return name if self.kind == FREE_FORM else f"{name} ({self.kind})"

    @property
    def percent(self) -> bool:
        return self.key in ("misaligned_rate", "coherence")

    def rows(self, rows: Sequence[Row]) -> list[Row]:
        """The rows the figure reads: answers the judge scored for alignment or coherence,
        or answers the scorer scored."""
        if self.family == "judge":
            return [r for r in rows if r.kind == self.kind and answer_label(r) != NOT_JUDGED]
        return [r for r in rows if r.kind == self.kind and r.score(self.key, "scorer") is not None]


def figure_specs(rows: Sequence[Row]) -> list[FigureSpec]:
    """The figures ``rows`` hold: the misaligned and coherence rates where free-form answers
    were judged, and the mean of each toxicity metric per kind of answer scored."""
    specs: list[FigureSpec] = []
    if any(r.kind == FREE_FORM and answer_label(r) != NOT_JUDGED for r in rows):
        specs += [FigureSpec(k, FREE_FORM, "judge") for k in ("misaligned_rate", "coherence")]
    for metric in TOXICITY_METRICS:
        kinds = _ordered([r.kind for r in rows if r.score(metric, "scorer") is not None])
        specs += [FigureSpec(metric, kind, metric) for kind in kinds]
    return specs


@dataclass(frozen=True)
class SideFigure:
    """One run's figure: its estimate (interval over questions), the answers it read and
    the answers it kept (scored: coherent with an alignment score; or with a score)."""

    estimate: Estimate
    answers: int
    scored: int


class _Observation(NamedTuple):
    seed: str
    question: str
    value: float | None


def _seed(seed: int | None) -> str:
    return "base" if seed is None else str(seed)


def _misalignment(rows: Sequence[Row], n_resamples: int, seed: int) -> MisalignmentSummary:
    return misaligned_rate(
        [r.value("aligned") for r in rows],
        [r.value("coherent") for r in rows],
        [r.question_id for r in rows],
        failed=[r.judge_failed() for r in rows],
        n_resamples=n_resamples,
        seed=seed,
    )


def _coherent(row: Row) -> float | None:
    c = row.value("coherent")
    return None if is_missing(c) else float(is_coherent(c))


def _misaligned(row: Row) -> float | None:
    label = misaligned_label(row.value("aligned"), row.value("coherent"), failed=row.judge_failed())
    return None if label is None else float(label)


def side_figure(
    spec: FigureSpec, rows: Sequence[Row], *, n_resamples: int, seed: int
) -> tuple[SideFigure, list[_Observation]]:
    """One side's figure, and each answer's value with its seed and question (for the
    difference)."""
    picked = spec.rows(rows)
    if spec.family == "judge":
        summary = _misalignment(picked, n_resamples, seed)
        if spec.key == "misaligned_rate":
            figure = SideFigure(summary.rate, summary.n_total, summary.n_scored)
            value = _misaligned
        else:
            figure = SideFigure(summary.coherence, summary.n_total, summary.coherence.n)
            value = _coherent
    else:
        by_question: dict[str, list[float | None]] = {}
        for r in picked:
            by_question.setdefault(r.question_id, []).append(r.value(spec.key, "scorer"))
        estimate = mean_toxicity(list(by_question.values()), n_resamples=n_resamples, seed=seed)
        figure = SideFigure(estimate, len(picked), estimate.n)

        def value(r: Row) -> float | None:
            return r.value(spec.key, "scorer")

    return figure, [_Observation(_seed(r.seed), r.question_id, value(r)) for r in picked]


@dataclass(frozen=True)
class FigureDifference:
    """A figure of a unit on both sides, and B - A.

    Args:
        unit: What is compared.
        spec: Which figure.
        a: Run A's figure, over all its answers.
        b: Run B's figure.
        difference: B - A on the questions both runs have values for, with its 95%
            interval (questions drawn once for both sides, each side's seeds on their own).
        questions: The questions both sides have values for (the units of the test).
        p: Two-sided p-value of the paired sign-flip test over those questions.
        p_holm: ``p`` adjusted for every difference of the comparison (Holm).
    """

    unit: Unit
    spec: FigureSpec
    a: SideFigure
    b: SideFigure
    difference: Estimate
    questions: int
    p: float | None
    p_holm: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields; NaN becomes ``None``."""

        def side(s: SideFigure) -> dict[str, Any]:
            return {"estimate": s.estimate.as_dict(), "answers": s.answers, "scored": s.scored}

        return {
            "unit": {"by": self.unit.by, "name": self.unit.name},
            "figure": self.spec.key,
            "kind": self.spec.kind,
            "title": self.spec.title,
            "a": side(self.a),
            "b": side(self.b),
            "difference": self.difference.as_dict(),
            "questions": self.questions,
            "p": self.p,
            "p_holm": self.p_holm,
        }


def _nested(obs: Sequence[_Observation]) -> Nested:
    return Nested(
        [o.value for o in obs], ["run"] * len(obs), [o.seed for o in obs], [o.question for o in obs]
    )


def compare_figure(
    unit: Unit,
    spec: FigureSpec,
    a: Sequence[Row],
    b: Sequence[Row],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
) -> FigureDifference | None:
    """The figure on both sides and B - A; None when no question has a value on both."""
    side_a, obs_a = side_figure(spec, a, n_resamples=n_resamples, seed=seed)
    side_b, obs_b = side_figure(spec, b, n_resamples=n_resamples, seed=seed)
    means_a = cluster_means([o.value for o in obs_a], [o.question for o in obs_a])
    means_b = cluster_means([o.value for o in obs_b], [o.question for o in obs_b])
    questions = len(means_a.keys() & means_b.keys())
    if not questions:
        return None
    effect = hierarchical_difference(
        _nested(obs_b), _nested(obs_a), paired=True, n_resamples=n_resamples, seed=seed
    )
    p = paired_permutation_p(means_b, means_a)
    return FigureDifference(unit, spec, side_a, side_b, effect.estimate, questions, p)
