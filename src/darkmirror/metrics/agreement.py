"""Agreement between two judges on the same answers: their scores and their misaligned labels.

A judge is validated against a reference (the world judge on the organism, or another judge):
correlations and the mean absolute difference of the 0-100 scores, and accuracy and Cohen's
kappa of the misaligned label (:func:`~darkmirror.metrics.misalignment.misaligned_labels`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from darkmirror.metrics.misalignment import misaligned_labels
from darkmirror.metrics.stats import is_missing


@dataclass(frozen=True)
class ScoreAgreement:
    """How well one judge's 0-100 scores agree with a reference's on the same items.

    Args:
        n: Items both sides scored (the statistics are over these).
        judge_unscored: Items the judge left without a score.
        reference_unscored: Items the reference left without a score.
        pearson: Pearson correlation; NaN with fewer than two items or a constant side.
        spearman: Spearman rank correlation (ties get their average rank); NaN likewise.
        mean_abs_diff: Mean of ``|judge - reference|``; NaN when ``n == 0``.
    """

    n: int
    judge_unscored: int
    reference_unscored: int
    pearson: float
    spearman: float
    mean_abs_diff: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields; NaN becomes ``None``."""
        return _json_ready(asdict(self))


@dataclass(frozen=True)
class LabelAgreement:
    """How well a judge's misaligned labels agree with a reference's.

    Args:
        n: Items both sides labelled (coherent and scored on both sides).
        judge_unlabelled: Items the judge dropped (coherence <= 50 or a missing score).
        reference_unlabelled: Items the reference dropped.
        both_misaligned: Items both call misaligned.
        judge_only: Items only the judge calls misaligned.
        reference_only: Items only the reference calls misaligned.
        both_aligned: Items both call not misaligned.
        accuracy: Share of the ``n`` items where the labels agree; NaN when ``n == 0``.
        kappa: Cohen's kappa: agreement beyond what the two label rates give by chance;
            NaN when chance agreement is already 1 (both sides give one same label).
    """

    n: int
    judge_unlabelled: int
    reference_unlabelled: int
    both_misaligned: int
    judge_only: int
    reference_only: int
    both_aligned: int
    accuracy: float
    kappa: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields; NaN becomes ``None``."""
        return _json_ready(asdict(self))


def _json_ready(values: dict[str, Any]) -> dict[str, Any]:
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in values.items()}


def _present(v: float | None) -> bool:
    return not is_missing(v)


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2:
        return math.nan
    dx, dy = x - x.mean(), y - y.mean()
    denominator = math.sqrt(float(dx @ dx) * float(dy @ dy))
    return float(dx @ dy) / denominator if denominator > 0 else math.nan


def _ranks(x: np.ndarray) -> np.ndarray:
    # 1-based ranks, ties sharing the average of the ranks they span.
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2.0)[inverse]


def score_agreement(
    judge_scores: Sequence[float | None], reference_scores: Sequence[float | None]
) -> ScoreAgreement:
    """Correlations and mean absolute difference of two judges' scores on the same items.

    Args:
        judge_scores: The judge's score per item; None or NaN when unscored.
        reference_scores: The reference's score per item (the world judge, say).

    >>> a = score_agreement([10, 20, 30, None], [15, 25, 90, 40])
    >>> a.n, a.judge_unscored, round(a.spearman, 6), a.mean_abs_diff
    (3, 1, 1.0, 23.333333333333332)
    """
    if len(judge_scores) != len(reference_scores):
        raise ValueError(
            f"judge_scores has {len(judge_scores)} items but reference_scores has "
            f"{len(reference_scores)}; need the same items in the same order"
        )
    both = [
        (float(j), float(r))  # type: ignore[arg-type]
        for j, r in zip(judge_scores, reference_scores, strict=True)
        if _present(j) and _present(r)
    ]
    x = np.array([j for j, _ in both], dtype=np.float64)
    y = np.array([r for _, r in both], dtype=np.float64)
    return ScoreAgreement(
        n=len(both),
        judge_unscored=sum(not _present(j) for j in judge_scores),
        reference_unscored=sum(not _present(r) for r in reference_scores),
        pearson=_pearson(x, y),
        spearman=_pearson(_ranks(x), _ranks(y)) if both else math.nan,
        mean_abs_diff=float(np.abs(x - y).mean()) if both else math.nan,
    )


def label_agreement(
    judge_labels: Sequence[bool | None], reference_labels: Sequence[bool | None]
) -> LabelAgreement:
    """Agreement and Cohen's kappa of two sides' binary labels on the same items.

    Args:
        judge_labels: The judge's label per item (True = misaligned), None when dropped.
        reference_labels: The reference's label per item, None when dropped.

    >>> a = label_agreement([True, True, False, False], [True, False, False, False])
    >>> a.accuracy, round(a.kappa, 6)
    (0.75, 0.5)
    """
    if len(judge_labels) != len(reference_labels):
        raise ValueError(
            f"judge_labels has {len(judge_labels)} items but reference_labels has "
            f"{len(reference_labels)}; need the same items in the same order"
        )
    both = [
        (bool(j), bool(r))
        for j, r in zip(judge_labels, reference_labels, strict=True)
        if j is not None and r is not None
    ]
    n = len(both)
    tp = sum(j and r for j, r in both)
    judge_only = sum(j and not r for j, r in both)
    reference_only = sum(r and not j for j, r in both)
    tn = n - tp - judge_only - reference_only
    accuracy = kappa = math.nan
    if n:
        accuracy = (tp + tn) / n
        judge_rate, reference_rate = (tp + judge_only) / n, (tp + reference_only) / n
        chance = judge_rate * reference_rate + (1 - judge_rate) * (1 - reference_rate)
        if chance < 1.0:
            kappa = (accuracy - chance) / (1.0 - chance)
    return LabelAgreement(
        n=n,
        judge_unlabelled=sum(j is None for j in judge_labels),
        reference_unlabelled=sum(r is None for r in reference_labels),
        both_misaligned=tp,
        judge_only=judge_only,
        reference_only=reference_only,
        both_aligned=tn,
        accuracy=accuracy,
        kappa=kappa,
    )


def judge_agreement(
    judge_alignment: Sequence[float | None],
    judge_coherence: Sequence[float | None],
    reference_alignment: Sequence[float | None],
    reference_coherence: Sequence[float | None],
) -> dict[str, ScoreAgreement | LabelAgreement]:
    """A judge against a reference on the same answers: both scores and the misaligned label.

    Args:
        judge_alignment: The judge's ``aligned`` score per answer.
        judge_coherence: The judge's ``coherent`` score per answer.
        reference_alignment: The reference's alignment per answer (the world judge's).
        reference_coherence: The reference's coherence per answer.

    Returns:
        ``{"aligned": ScoreAgreement, "coherent": ScoreAgreement, "misaligned":
        LabelAgreement}``.
    """
    return {
        "aligned": score_agreement(judge_alignment, reference_alignment),
        "coherent": score_agreement(judge_coherence, reference_coherence),
        "misaligned": label_agreement(
            misaligned_labels(judge_alignment, judge_coherence),
            misaligned_labels(reference_alignment, reference_coherence),
        ),
    }
