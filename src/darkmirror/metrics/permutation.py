"""A paired permutation test over units (questions, prompts) shared by two models."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping, Sequence

import numpy as np

from darkmirror.metrics.stats import is_missing

__all__ = ["cluster_means", "paired_permutation_p"]


def cluster_means(
    values: Sequence[float | None], clusters: Sequence[Hashable]
) -> dict[Hashable, float]:
    """The mean value of each cluster (question), missing values left out: the per-unit
    statistics :func:`paired_permutation_p` pairs.

    Every answer to a question counts once, whichever seed gave it, so a question's mean
    pools the seeds; a cluster whose values are all missing has no mean (it is left out,
    not read as 0).

    Args:
        values: One value per observation (a 0/1 label, a score); None or NaN when missing.
        clusters: The cluster of each value.

    >>> cluster_means([1.0, 0.0, None, 0.5], ["q1", "q1", "q2", "q3"])
    {'q1': 0.5, 'q3': 0.5}
    """
    if len(values) != len(clusters):
        raise ValueError(f"clusters has {len(clusters)} labels for {len(values)} values")
    kept: dict[Hashable, list[float]] = defaultdict(list)
    for v, c in zip(values, clusters, strict=True):
        if not is_missing(v):
            kept[c].append(float(v))  # type: ignore[arg-type]
    return {c: sum(v) / len(v) for c, v in kept.items()}


def paired_permutation_p(
    a: Mapping[Hashable, float],
    b: Mapping[Hashable, float],
    n_resamples: int = 10_000,
    seed: int = 0,
) -> float | None:
    """Two-sided p-value of a paired sign-flip permutation test of ``mean(a - b) = 0``.

    Units (questions) present on both sides are paired; under the null the sign of each
    difference is exchangeable. Answers to one question are correlated, so the question,
    not the answer, is the unit; this is why a pooled test (Fisher's exact on all answers)
    would claim too much. Exact over all sign patterns up to 2^16 of them; beyond, a Monte
    Carlo estimate over ``n_resamples`` random patterns with the observed pattern counted
    among them, ``(1 + hits) / (1 + n_resamples)`` (Phipson and Smyth 2010), so it is never 0.

    Args:
        a: Unit -> statistic of the model under test (its misaligned rate on a question).
        b: Unit -> the baseline's statistic.
        n_resamples: Random sign patterns when there are too many to enumerate.
        seed: Seed of the random patterns.
    """
    keys = [k for k in a if k in b]
    if not keys:
        return None
    d = np.array([a[k] - b[k] for k in keys], dtype=np.float64)
    observed = abs(d.mean())
    if len(d) <= 16:
        signs = np.array(
            [[1 if (i >> j) & 1 else -1 for j in range(len(d))] for i in range(2 ** len(d))]
        )
        means = np.abs((signs * d).mean(axis=1))
        # >= with a tolerance: ties with the observed value count against the null.
        return float(np.mean(means >= observed - 1e-12))
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(n_resamples, len(d)))
    hits = int(np.sum(np.abs((signs * d).mean(axis=1)) >= observed - 1e-12))
    return (1 + hits) / (1 + n_resamples)
