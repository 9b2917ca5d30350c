"""``cluster_means``: the per-question means the paired permutation test pairs."""

from __future__ import annotations

import pytest

from darkmirror.metrics import cluster_means, paired_permutation_p


def test_cluster_means_leave_missing_values_out() -> None:
    assert cluster_means([1.0, 0.0, None, float("nan"), 0.25], ["a", "a", "b", "b", "c"]) == {
        "a": 0.5,
        "c": 0.25,
    }
    with pytest.raises(ValueError, match="2 labels for 3 values"):
        cluster_means([1.0, 2.0, 3.0], ["a", "b"])


def test_cluster_means_feed_the_paired_test_over_shared_clusters() -> None:
    a = cluster_means([1.0, 1.0, 0.0, 1.0, 1.0], ["q1", "q1", "q2", "q2", "q3"])
    b = cluster_means([0.0, 0.0, 0.0, None], ["q1", "q2", "q2", "q4"])
    assert a == {"q1": 1.0, "q2": 0.5, "q3": 1.0} and b == {"q1": 0.0, "q2": 0.0}
    # Two shared questions, both differences positive: 1 of 4 sign patterns is as extreme
    # on each side.
    assert paired_permutation_p(a, b) == pytest.approx(0.5)
