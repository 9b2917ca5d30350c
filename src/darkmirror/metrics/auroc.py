"""AUROC of a score as a detector of a binary label, with a (cluster) bootstrap interval.

The AUROC is the probability that a random positive (a misaligned answer) projects higher
than a random negative, ties counting one half (the Mann-Whitney statistic). Its interval
is a percentile bootstrap, by cluster when labels are given (answers to the same question
are correlated), computed for all resamples at once from cluster weights.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence

import numpy as np

from darkmirror.metrics.stats import Estimate


def _weighted_auroc(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUROC for each row of ``weights`` ``(resamples, n)``: every item counted that many
    times. NaN for a row without both classes."""
    order = np.argsort(scores, kind="mergesort")
    s, y, w = scores[order], labels[order], weights[:, order]
    # Tied scores form one group: a positive beats the negatives of lower groups and ties
    # with the negatives of its own.
    starts = np.r_[0, np.flatnonzero(np.diff(s)) + 1]
    pos = np.add.reduceat(w * y, starts, axis=1)
    neg = np.add.reduceat(w * ~y, starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    num = (pos * (below + 0.5 * neg)).sum(axis=1)
    den = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _arrays(scores: Sequence[float], labels: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(labels, dtype=bool).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"{x.size} scores for {y.size} labels")
    if not np.all(np.isfinite(x)):
        raise ValueError("scores contain NaN or inf")
    return x, y


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve of ``scores`` as a detector of ``labels`` (True = positive).

    Args:
        scores: Higher means more likely positive (a projection on the direction).
        labels: One boolean per score.

    Returns:
        The AUROC in [0, 1] (0.5 is chance); NaN when a class is empty.

    >>> auroc([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
    0.75
    """
    x, y = _arrays(scores, labels)
    if x.size == 0:
        return math.nan
    return float(_weighted_auroc(x, y, np.ones((1, x.size)))[0])


def auroc_with_ci(
    scores: Sequence[float],
    labels: Sequence[bool],
    clusters: Sequence[Hashable] | None = None,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """AUROC with a percentile bootstrap interval.

    Args:
        scores: Higher means more likely positive.
        labels: One boolean per score.
        clusters: One label per score (a question id); whole clusters are resampled. None
            resamples items.
        n_resamples: Bootstrap resamples (those that lose a class are skipped).
        confidence: Coverage of the interval, in (0, 1).
        seed: Seed of the resampling.

    Returns:
        The AUROC; ``n`` is the number of items, the interval NaN with fewer than two
        resampling units or a class missing.
    """
    x, y = _arrays(scores, labels)
    method = "bootstrap" if clusters is None else "cluster_bootstrap"
    value = auroc(x, y)
    if clusters is None:
        codes = np.arange(x.size)
    else:
        if len(clusters) != x.size:
            raise ValueError(f"{len(clusters)} cluster labels for {x.size} scores")
        index: dict[Hashable, int] = {}
        codes = np.array([index.setdefault(c, len(index)) for c in clusters], dtype=np.int64)
    units = int(codes.max()) + 1 if x.size else 0
    n_clusters = None if clusters is None else units
    if units < 2 or math.isnan(value):
        return Estimate(value, math.nan, math.nan, int(x.size), method, n_clusters)
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, units, size=(n_resamples, units))
    counts = np.zeros((n_resamples, units))
    np.add.at(counts, (np.arange(n_resamples)[:, None], drawn), 1.0)
    draws = _weighted_auroc(x, y, counts[:, codes])
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return Estimate(value, math.nan, math.nan, int(x.size), method, n_clusters)
    alpha = 1 - confidence
    lo, hi = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    return Estimate(value, float(lo), float(hi), int(x.size), method, n_clusters)
