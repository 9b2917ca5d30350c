"""The hierarchical bootstrap: intervals for effects measured on several organisms.

A sweep across organism seeds measures each answer at three levels: the organism (a unit,
the replicate a reader cares about), the fine-tune seed within it, and the question the
answer is to. Answers to one question by one model are not independent, nor are a
model's questions, nor an organism's models; a bootstrap that resamples answers as if they
were gives intervals far too narrow. Here each replicate resamples units with replacement,
then, within each drawn unit, its seeds with replacement, then, within each drawn seed, its
questions (clusters) with replacement (Saravanan et al. 2020, "Application of the
hierarchical bootstrap to multi-level data in neuroscience"); a unit or seed drawn twice
gets two independent draws below it.

The estimate weighs units equally (the population is organisms): a unit's value is the
mean of its values (all its seeds and clusters pooled), and the pooled value is the mean
over units. A difference pairs the arms within each unit: the unit's difference is its
mean in arm ``a`` minus its mean in arm ``b``.

When both arms answer the same questions (every model of an emergent-misalignment run is
asked the same ones), questions are crossed with arms and seeds, not nested in them: a
hard question is hard for every model. ``hierarchical_difference(..., paired=True)``
then draws one resample of the unit's questions per replicate and applies it to both
arms and to every seed (seeds are still drawn per arm: a fine-tune seed of one arm has
no counterpart in the other), so the questions' own spread cancels in the difference
instead of widening its interval.

No library does this: scipy's ``bootstrap`` and arch resample one level (or blocks of one
level), which is why it is written here.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from darkmirror.metrics.stats import Estimate, check_confidence, empty_estimate, is_missing

__all__ = [
    "Nested",
    "PooledEffect",
    "cell_contrast",
    "hierarchical_difference",
    "hierarchical_mean",
]

METHOD = "hierarchical_bootstrap"


@dataclass(frozen=True)
class Nested:
    """Values with their place in the hierarchy: unit > seed > cluster.

    Args:
        values: One value per observation (a 0/1 label, a log-odds); None or NaN is dropped.
        units: The unit of each value (the organism).
        seeds: The seed of each value within its unit (the fine-tune seed).
        clusters: The cluster of each value within its seed (the question).
    """

    values: Sequence[float | None]
    units: Sequence[Hashable]
    seeds: Sequence[Hashable]
    clusters: Sequence[Hashable]

    def __post_init__(self) -> None:
        n = len(self.values)
        for name in ("units", "seeds", "clusters"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} labels for {n} values")


@dataclass(frozen=True)
class _Seed:
    sums: np.ndarray  # per cluster
    counts: np.ndarray


def _tree(data: Nested) -> dict[Hashable, list[_Seed]]:
    """unit -> its seeds, each with the sum and count of values per cluster (missing dropped)."""
    cells: dict[Hashable, dict[Hashable, dict[Hashable, list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for v, u, s, c in zip(data.values, data.units, data.seeds, data.clusters, strict=True):
        if not is_missing(v):
            cells[u][s][c].append(float(v))  # type: ignore[arg-type]
    return {
        u: [
            _Seed(
                np.array([sum(vals) for vals in clusters.values()]),
                np.array([len(vals) for vals in clusters.values()], dtype=float),
            )
            for clusters in seeds.values()
        ]
        for u, seeds in cells.items()
    }


def _unit_mean(seeds: list[_Seed]) -> float:
    total = sum(s.counts.sum() for s in seeds)
    return float(sum(s.sums.sum() for s in seeds) / total) if total else math.nan


def _resampled_unit_means(seeds: list[_Seed], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` independent draws of a unit's mean: its seeds, then each seed's clusters."""
    sums, counts = np.zeros(n), np.zeros(n)
    if not seeds:
        return np.full(n, math.nan)
    drawn = rng.integers(0, len(seeds), size=(n, len(seeds)))
    for index, seed in enumerate(seeds):
        rows = np.nonzero(drawn == index)[0]  # one entry per time the seed was drawn
        if rows.size == 0:
            continue
        clusters = rng.integers(0, seed.sums.size, size=(rows.size, seed.sums.size))
        np.add.at(sums, rows, seed.sums[clusters].sum(axis=1))
        np.add.at(counts, rows, seed.counts[clusters].sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.where(counts > 0, counts, 1), math.nan)


def _interval(draws: np.ndarray, value: float, n: int, n_units: int, confidence: float) -> Estimate:
    finite = draws[np.isfinite(draws)]
    if math.isnan(value) or finite.size == 0:
        return Estimate(value, math.nan, math.nan, n, METHOD, n_units)
    tail = (1.0 - confidence) / 2 * 100
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return Estimate(value, float(lo), float(hi), n, METHOD, n_units)


def _count(data: Nested) -> int:
    return sum(not is_missing(v) for v in data.values)


def _pooled_draws(
    per_unit: dict[Hashable, Any], n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Resample units, then call ``per_unit[u](k)`` for ``k`` inner draws of each drawn unit;
    returns the mean over drawn units of each replicate."""
    units = list(per_unit)
    drawn = rng.integers(0, len(units), size=(n_resamples, len(units)))
    values = np.full(drawn.shape, math.nan)
    for index, unit in enumerate(units):
        where = np.nonzero(drawn == index)
        if where[0].size:
            values[where] = per_unit[unit](where[0].size)
    with warnings.catch_warnings():  # a replicate of only NaN units is NaN, by design
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=1)


def hierarchical_mean(
    data: Nested, *, n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Estimate:
    """The mean over units of each unit's mean, with a hierarchical bootstrap interval.

    Returns:
        An :class:`Estimate` with ``n`` the values kept and ``n_clusters`` the units.
    """
    check_confidence(confidence)
    tree = _tree(data)
    if not tree:
        return empty_estimate(METHOD, 0)
    rng = np.random.default_rng(seed)
    value = float(np.nanmean([_unit_mean(s) for s in tree.values()]))
    draws = _pooled_draws(
        {u: (lambda k, s=s: _resampled_unit_means(s, k, rng)) for u, s in tree.items()},
        n_resamples,
        rng,
    )
    return _interval(draws, value, _count(data), len(tree), confidence)


@dataclass(frozen=True)
class PooledEffect:
    """A difference between two arms, pooled over units, and on each unit alone.

    Args:
        estimate: Mean over units of (unit mean in ``a`` - unit mean in ``b``), with its
            hierarchical bootstrap interval (``n_clusters``: the units with both arms).
        per_unit: Each unit's own difference, its interval resampling that unit's seeds,
            then their clusters.
        agree: Units whose own difference has the pooled estimate's sign.
        significant: Units whose own interval excludes zero on that side.
    """

    estimate: Estimate
    per_unit: dict[str, Estimate] = field(default_factory=dict)
    agree: int = 0
    significant: int = 0

    @property
    def n_units(self) -> int:
        return len(self.per_unit)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields; NaN becomes ``None``."""
        return {
            "estimate": self.estimate.as_dict(),
            "per_unit": {u: e.as_dict() for u, e in self.per_unit.items()},
            "n_units": self.n_units,
            "agree": self.agree,
            "significant": self.significant,
        }


class _CrossedArm(NamedTuple):
    sums: np.ndarray  # seeds x clusters
    counts: np.ndarray


def _crossed(data: Nested, unit: Hashable, clusters: Sequence[Hashable]) -> _CrossedArm:
    """One arm of one unit as seed x cluster matrices of sums and counts over ``clusters``."""
    index = {c: i for i, c in enumerate(clusters)}
    seeds: dict[Hashable, int] = {}
    cells: list[tuple[int, int, float]] = []
    for v, u, s, c in zip(data.values, data.units, data.seeds, data.clusters, strict=True):
        if u == unit and c in index and not is_missing(v):
            cells.append((seeds.setdefault(s, len(seeds)), index[c], float(v)))  # type: ignore[arg-type]
    sums, counts = np.zeros((len(seeds), len(clusters))), np.zeros((len(seeds), len(clusters)))
    for i, j, v in cells:
        sums[i, j] += v
        counts[i, j] += 1
    return _CrossedArm(sums, counts)


def _multiplicities(rng: np.random.Generator, k: int, size: int) -> np.ndarray:
    """``k`` resamples with replacement of ``size`` items, as how often each is drawn."""
    drawn = rng.integers(0, size, size=(k, size))
    counts = np.zeros((k, size))
    np.add.at(counts, (np.repeat(np.arange(k), size), drawn.ravel()), 1.0)
    return counts


def _crossed_mean(arm: _CrossedArm, questions: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The arm's mean per replicate, given each replicate's question and seed multiplicities."""
    sums = ((questions @ arm.sums.T) * seeds).sum(axis=1)
    counts = ((questions @ arm.counts.T) * seeds).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.where(counts > 0, counts, 1), math.nan)


def _paired_unit(
    a: Nested, b: Nested, unit: Hashable, rng: np.random.Generator
) -> tuple[float, int, Any]:
    """A unit's difference on the clusters both arms have there, its count of values, and a
    function drawing ``k`` replicates of it (one cluster resample shared by both arms)."""
    shared = sorted(
        {
            c
            for v, u, c in zip(a.values, a.units, a.clusters, strict=True)
            if u == unit and not is_missing(v)
        }
        & {
            c
            for v, u, c in zip(b.values, b.units, b.clusters, strict=True)
            if u == unit and not is_missing(v)
        },
        key=repr,
    )
    arm_a, arm_b = _crossed(a, unit, shared), _crossed(b, unit, shared)
    every = np.ones((1, len(shared)))
    own = float(
        _crossed_mean(arm_a, every, np.ones((1, len(arm_a.sums))))[0]
        - _crossed_mean(arm_b, every, np.ones((1, len(arm_b.sums))))[0]
    )

    def draws(k: int) -> np.ndarray:
        questions = _multiplicities(rng, k, len(shared))
        return _crossed_mean(
            arm_a, questions, _multiplicities(rng, k, len(arm_a.sums))
        ) - _crossed_mean(arm_b, questions, _multiplicities(rng, k, len(arm_b.sums)))

    return own, int(arm_a.counts.sum() + arm_b.counts.sum()), draws


def hierarchical_difference(
    a: Nested,
    b: Nested,
    *,
    paired: bool = False,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PooledEffect:
    """``a`` minus ``b``, paired within units (see the module docstring).

    Only units with values in both arms count. Per unit, the interval resamples its seeds
    and clusters; pooled, units first.

    Args:
        paired: The arms were asked the same clusters (questions): resample the clusters
            once per replicate for both arms and every seed, on the clusters both arms have
            in the unit (see the module docstring). Otherwise each seed of each arm draws
            its own clusters.
    """
    check_confidence(confidence)
    tree_a, tree_b = _tree(a), _tree(b)
    units = [u for u in tree_a if u in tree_b]
    if not units:
        return PooledEffect(empty_estimate(METHOD, 0))
    rng = np.random.default_rng(seed)

    if paired:
        crossed = {u: _paired_unit(a, b, u, rng) for u in units}
        own = {u: crossed[u][0] for u in units}
        n = {u: crossed[u][1] for u in units}

        def unit_draws(unit: Hashable, k: int) -> np.ndarray:
            return crossed[unit][2](k)

    else:
        own = {u: _unit_mean(tree_a[u]) - _unit_mean(tree_b[u]) for u in units}
        n = {u: int(sum(s.counts.sum() for s in tree_a[u] + tree_b[u])) for u in units}

        def unit_draws(unit: Hashable, k: int) -> np.ndarray:
            return _resampled_unit_means(tree_a[unit], k, rng) - _resampled_unit_means(
                tree_b[unit], k, rng
            )

    per_unit = {
        str(u): _interval(unit_draws(u, n_resamples), own[u], n[u], 1, confidence) for u in units
    }
    value = float(np.nanmean(list(own.values())))
    draws = _pooled_draws({u: (lambda k, u=u: unit_draws(u, k)) for u in units}, n_resamples, rng)
    estimate = _interval(draws, value, sum(n.values()), len(units), confidence)
    sign = np.sign(value) if not math.isnan(value) else 0.0
    agree = sum(bool(sign) and np.sign(e.value) == sign for e in per_unit.values())
    significant = sum(
        bool(sign) and (e.lo > 0 if sign > 0 else e.hi < 0) for e in per_unit.values()
    )
    return PooledEffect(estimate, per_unit, int(agree), int(significant))


def cell_contrast(
    arms: Sequence[tuple[float, Nested]],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """A weighted sum of arms measured on the same cells, with a hierarchical interval.

    Each arm's mean is taken per cell (unit, seed, cluster); the contrast is computed
    per cell where every arm has a value (``sum(weight * mean)``), and the cells' contrasts
    are pooled as :func:`hierarchical_mean` pools values (units equally weighted; seeds,
    then clusters resampled within each). The arms are paired through their cells, so a
    difference-in-differences, ``[(1, a), (-1, b), (-1, c), (1, d)]``, compares a change in
    one model with the same change in another on the same seeds and questions.

    Returns:
        An :class:`Estimate` with ``n`` the cells with every arm and ``n_clusters`` the units.
    """
    means = []
    for _, data in arms:
        cells: dict[tuple[Hashable, Hashable, Hashable], list[float]] = defaultdict(list)
        for v, u, s, c in zip(data.values, data.units, data.seeds, data.clusters, strict=True):
            if not is_missing(v):
                cells[(u, s, c)].append(float(v))  # type: ignore[arg-type]
        means.append({k: sum(v) / len(v) for k, v in cells.items()})
    shared = sorted(set.intersection(*(set(m) for m in means)), key=repr) if means else []
    contrasts = [sum(w * m[k] for (w, _), m in zip(arms, means, strict=True)) for k in shared]
    return hierarchical_mean(
        Nested(contrasts, [k[0] for k in shared], [k[1] for k in shared], [k[2] for k in shared]),
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
    )
