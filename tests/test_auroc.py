"""AUROC of a projection as a detector."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from darkmirror.metrics import auroc, auroc_with_ci


def _pairwise(scores, labels) -> float:
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = sum((p > n) + 0.5 * (p == n) for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auroc_known_values() -> None:
    assert auroc([1, 2, 3, 4], [False, False, True, True]) == 1.0
    assert auroc([4, 3, 2, 1], [False, False, True, True]) == 0.0
    assert auroc([1, 1, 1, 1], [False, True, False, True]) == 0.5
    assert auroc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert math.isnan(auroc([1, 2], [True, True]))


def test_auroc_matches_the_pairwise_definition_with_ties() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        scores = rng.integers(0, 6, 40).tolist()
        labels = (rng.random(40) < 0.4).tolist()
        if any(labels) and not all(labels):
            assert auroc(scores, labels) == pytest.approx(_pairwise(scores, labels))


def test_auroc_interval() -> None:
    rng = np.random.default_rng(1)
    labels = rng.random(300) < 0.3
    scores = rng.normal(size=300) + 1.0 * labels
    e = auroc_with_ci(scores, labels)
    assert e.lo < e.value < e.hi
    assert 0.7 < e.value < 0.85  # a unit shift of a normal gives 0.76
    # Clustered answers: a wider interval than treating every answer as independent.
    clusters = np.arange(300) // 30
    c = auroc_with_ci(scores, labels, clusters.tolist())
    assert c.value == e.value and c.n_clusters == 10 and c.method == "cluster_bootstrap"
    assert auroc_with_ci(scores, labels, seed=0) == e
    single = auroc_with_ci([1.0, 2.0], [True, True])
    assert math.isnan(single.value) and math.isnan(single.lo)
    with pytest.raises(ValueError, match="cluster labels"):
        auroc_with_ci(scores, labels, [0, 1])
