"""A paired permutation test over units (questions, prompts) shared by two models."""

from __future__ import annotations

from collections.abc import Hashable, Mapping

import numpy as np


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
