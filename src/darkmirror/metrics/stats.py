"""Estimates with confidence intervals: Wilson, the (cluster) bootstrap, and their building blocks.

Every figure darkmirror reports is an :class:`Estimate`. Inputs are plain sequences (lists,
numpy arrays, columns of rows), with ``None`` or NaN for a missing value.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import asdict, dataclass, replace
from statistics import NormalDist
from typing import Any

import numpy as np

# Elements of values x resamples gathered at once by the bootstrap: bounds memory near 16 MB.
_BOOTSTRAP_CHUNK = 2_000_000


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a confidence interval.

    Args:
        value: The estimate (a rate, a mean); NaN when ``n == 0``.
        lo: Lower bound of the interval; NaN when it cannot be computed.
        hi: Upper bound of the interval; NaN when it cannot be computed.
        n: Number of units (answers, values) the estimate is over.
        method: How the interval was computed: ``"wilson"``, ``"bootstrap"`` or
            ``"cluster_bootstrap"``.
        n_clusters: Number of clusters resampled, for a cluster bootstrap.
    """

    value: float
    lo: float
    hi: float
    n: int
    method: str
    n_clusters: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields; NaN becomes ``None`` (JSON has no NaN)."""
        return {
            k: None if isinstance(v, float) and math.isnan(v) else v
            for k, v in asdict(self).items()
        }


def empty_estimate(method: str, n_clusters: int | None = None) -> Estimate:
    return Estimate(math.nan, math.nan, math.nan, 0, method, n_clusters)


def check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    Args:
        successes: Number of successes, ``0 <= successes <= n``.
        n: Number of trials.
        confidence: Coverage of the interval, in (0, 1).

    Returns:
        ``(lo, hi)``; ``(nan, nan)`` when ``n == 0``.
    """
    check_confidence(confidence)
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return math.nan, math.nan
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # Exact bounds at the edges: rounding would otherwise give -1e-17 or 0.9999999999999999.
    lo = 0.0 if successes == 0 else max(0.0, center - half)
    hi = 1.0 if successes == n else min(1.0, center + half)
    return lo, hi


def wilson_rate(successes: int, n: int, confidence: float = 0.95) -> Estimate:
    """A proportion with its Wilson interval, as an :class:`Estimate`.

    Args:
        successes: Number of successes.
        n: Number of trials.
        confidence: Coverage of the interval, in (0, 1).
    """
    lo, hi = wilson_interval(successes, n, confidence)
    if n == 0:
        return empty_estimate("wilson")
    return Estimate(successes / n, lo, hi, n, "wilson")


def _cluster_codes(clusters: Sequence[Hashable], n: int) -> np.ndarray:
    if len(clusters) != n:
        raise ValueError(f"clusters has {len(clusters)} labels for {n} values; need one per value")
    codes: dict[Hashable, int] = {}
    return np.fromiter((codes.setdefault(c, len(codes)) for c in clusters), dtype=np.int64, count=n)


def bootstrap_mean(
    values: Sequence[float] | np.ndarray,
    clusters: Sequence[Hashable] | None = None,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Mean with a percentile bootstrap interval, optionally resampling whole clusters.

    Answers to the same question (or from the same seed) are correlated, so resampling
    answers one by one gives intervals that are too narrow. With ``clusters``, whole
    clusters are drawn with replacement and the values of the drawn clusters are pooled.

    Args:
        values: Finite numbers (use :func:`mean_with_ci` to drop None/NaN first).
        clusters: One label per value (a question id, a ``(question, seed)`` tuple), or
            None to resample values independently.
        n_resamples: Number of bootstrap resamples.
        confidence: Coverage of the interval, in (0, 1).
        seed: Seed of the resampling; the same seed gives the same interval.

    Returns:
        The sample mean with the percentile interval. The interval is NaN when there are
        fewer than two resampling units, since one unit says nothing about spread.
    """
    check_confidence(confidence)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(x)):
        raise ValueError("values contain NaN or inf; use mean_with_ci to drop missing values")
    method = "bootstrap" if clusters is None else "cluster_bootstrap"
    n = x.size
    n_clusters = None if clusters is None else len(set(clusters))
    if n == 0:
        return empty_estimate(method, n_clusters)
    value = float(x.mean())
    means = bootstrap_means(x, clusters, n_resamples, seed)
    if means is None:
        return Estimate(value, math.nan, math.nan, n, method, n_clusters)
    lo, hi = percentiles(means, confidence)
    return Estimate(value, lo, hi, n, method, n_clusters)


def percentiles(draws: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1 - confidence
    lo, hi = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def bootstrap_means(
    x: np.ndarray, clusters: Sequence[Hashable] | None, n_resamples: int, seed: int
) -> np.ndarray | None:
    """Bootstrap draws of the mean of ``x``; None with fewer than two resampling units."""
    n = x.size
    if clusters is None:
        # The plain bootstrap is the cluster bootstrap with one value per cluster.
        sums, sizes = x, np.ones(n)
    else:
        codes = _cluster_codes(clusters, n)
        n_clusters = int(codes.max()) + 1 if n else 0
        sums = np.bincount(codes, weights=x, minlength=n_clusters)
        sizes = np.bincount(codes, minlength=n_clusters).astype(np.float64)
    units = sums.size
    if units < 2:
        return None
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    step = max(1, _BOOTSTRAP_CHUNK // units)
    for start in range(0, n_resamples, step):
        stop = min(start + step, n_resamples)
        drawn = rng.integers(0, units, size=(stop - start, units))
        # Pool the drawn clusters' values: a ratio of sums, not a mean of cluster means.
        means[start:stop] = sums[drawn].sum(axis=1) / sizes[drawn].sum(axis=1)
    return means


def bootstrap_difference(
    a: Sequence[float],
    b: Sequence[float],
    clusters_a: Sequence[Hashable] | None = None,
    clusters_b: Sequence[Hashable] | None = None,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """``mean(a) - mean(b)`` for two independent samples, with a bootstrap interval.

    Each sample is resampled on its own (by cluster when labels are given), so the
    interval accounts for the noise of both, e.g. a fine-tune against its control.

    Args:
        a: Values of the first sample (finite numbers).
        b: Values of the second sample.
        clusters_a: Cluster labels of ``a``, or None.
        clusters_b: Cluster labels of ``b``, or None.
        n_resamples: Number of bootstrap resamples.
        confidence: Coverage of the interval, in (0, 1).
        seed: Seed of the resampling.
    """
    check_confidence(confidence)
    xa = np.asarray(a, dtype=np.float64).reshape(-1)
    xb = np.asarray(b, dtype=np.float64).reshape(-1)
    method = "bootstrap_difference" if clusters_a is None else "cluster_bootstrap_difference"
    if xa.size == 0 or xb.size == 0:
        return empty_estimate(method)
    value = float(xa.mean() - xb.mean())
    draws_a = bootstrap_means(xa, clusters_a, n_resamples, seed)
    draws_b = bootstrap_means(xb, clusters_b, n_resamples, seed + 1)
    if draws_a is None or draws_b is None:
        return Estimate(value, math.nan, math.nan, xa.size + xb.size, method)
    lo, hi = percentiles(draws_a - draws_b, confidence)
    return Estimate(value, lo, hi, xa.size + xb.size, method)


def is_missing(v: float | None) -> bool:
    return v is None or (isinstance(v, float | np.floating) and math.isnan(v))


def mean_with_ci(
    values: Sequence[float | None],
    clusters: Sequence[Hashable] | None = None,
    seed: int = 0,
    n_resamples: int = 2000,
    confidence: float = 0.95,
) -> Estimate:
    """Mean of the present values with a (cluster) bootstrap interval.

    Args:
        values: Numbers, with None or NaN for missing ones (they are dropped, with their
            cluster labels).
        clusters: One label per value, or None; see :func:`bootstrap_mean`.
        seed: Seed of the resampling.
        n_resamples: Number of bootstrap resamples.
        confidence: Coverage of the interval, in (0, 1).

    Returns:
        The estimate; its ``n`` counts the values that were present.
    """
    keep = [i for i, v in enumerate(values) if not is_missing(v)]
    kept_clusters = None
    if clusters is not None:
        if len(clusters) != len(values):
            raise ValueError(
                f"clusters has {len(clusters)} labels for {len(values)} values; need one per value"
            )
        kept_clusters = [clusters[i] for i in keep]
    return bootstrap_mean(
        [float(values[i]) for i in keep],  # type: ignore[arg-type]
        kept_clusters,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )


def proportion(
    hits: list[bool],
    clusters: list[Hashable] | None,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> Estimate:
    # Aggregates: cluster bootstrap when there are clusters to resample; with a single
    # cluster the bootstrap has no spread to measure and Wilson is the per-question answer.
    if clusters is not None and len(set(clusters)) >= 2:
        boot = bootstrap_mean(
            np.asarray(hits, dtype=np.float64), clusters, n_resamples, confidence, seed
        )
        if boot.hi > boot.lo:
            return boot
        # Every cluster had the same rate (0% everywhere, say): resampling cannot see any
        # spread and would claim certainty, so fall back to Wilson on the pooled counts.
        return replace(wilson_rate(sum(hits), len(hits), confidence), n_clusters=boot.n_clusters)
    return wilson_rate(sum(hits), len(hits), confidence)


def rate_with_ci(
    hits: Sequence[bool],
    clusters: Sequence[Hashable] | None = None,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Share of hits: a cluster bootstrap across clusters when there are two or more
    (falling back to Wilson when every cluster has the same rate), Wilson otherwise.

    Args:
        hits: One boolean per answer (names the target animal, say).
        clusters: One label per answer (paraphrase, ``(paraphrase, seed)``), or None.
        n_resamples: Bootstrap resamples.
        confidence: Coverage of the interval, in (0, 1).
        seed: Seed of the bootstrap.
    """
    if clusters is not None and len(clusters) != len(hits):
        raise ValueError(
            f"clusters has {len(clusters)} labels for {len(hits)} answers; need one per answer"
        )
    return proportion(
        [bool(h) for h in hits],
        list(clusters) if clusters is not None else None,
        n_resamples,
        confidence,
        seed,
    )


def t_mean(values: Sequence[float | None], confidence: float = 0.95) -> Estimate:
    """Mean with Student's t interval: for a handful of independent replicates (seeds).

    A percentile bootstrap over 5 seeds under-covers (it cannot see beyond the 5 values
    and ignores the uncertainty in their spread); the t interval is the textbook answer for
    few replicates, exact when they are normal.

    Returns:
        The estimate (method ``"t"``); no interval for fewer than two values.
    """
    check_confidence(confidence)
    kept = np.array([float(v) for v in values if not is_missing(v)])  # type: ignore[arg-type]
    if kept.size == 0:
        return empty_estimate("t")
    mean = float(kept.mean())
    if kept.size < 2:
        return Estimate(mean, math.nan, math.nan, 1, "t")
    # Imported here: scipy.stats costs ~1 s at start-up, and most users of darkmirror.metrics
    # (the scan, the CLI) never need a t quantile.
    from scipy import stats

    half = float(
        stats.t.ppf(0.5 + confidence / 2, kept.size - 1) * kept.std(ddof=1) / math.sqrt(kept.size)
    )
    return Estimate(mean, mean - half, mean + half, int(kept.size), "t")
