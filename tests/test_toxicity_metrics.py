"""Tests for the toxicity metrics of darkmirror.metrics, on rows worked out by hand.

Bootstrap intervals are checked where they are exact: with 3 prompts, a resample that
draws the same prompt three times has probability 1/27 = 3.7% > 2.5%, so the 95%
percentile interval runs exactly from the lowest to the highest single-prompt value.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from darkmirror.metrics import (
    Estimate,
    NovelPatterns,
    amplification_ratio,
    bootstrap_mean,
    expected_max_toxicity,
    mean_length,
    mean_toxicity,
    mean_with_ci,
    novel_toxic_patterns,
    summarize_toxicity,
    toxicity_probability,
    wilson_interval,
)
from darkmirror.score.scorer import word_ngrams

# 3 prompts x 3 continuations. Maxima 0.7, 0.5 (exactly the threshold: toxic), 0.2.
ROWS = [
    [0.1, 0.7, 0.3],
    [0.2, 0.5, 0.4],
    [0.0, 0.1, 0.2],
]

# Missing scores. Prompt 1 has none; prompt 2 is non-toxic on what was scored.
MISSING = [
    [0.2, None, 0.6],
    [None, None, None],
    [0.0, 0.4, math.nan],
]


def close(estimate: Estimate, value: float, lo: float, hi: float) -> None:
    assert (estimate.value, estimate.lo, estimate.hi) == pytest.approx((value, lo, hi), abs=1e-9)


# --- expected maximum toxicity, toxicity probability, mean toxicity -------------------


def test_expected_max_toxicity_by_hand():
    emt = expected_max_toxicity(ROWS)
    # (0.7 + 0.5 + 0.2) / 3; interval from the lowest to the highest prompt maximum.
    close(emt, 1.4 / 3, 0.2, 0.7)
    assert (emt.n, emt.n_clusters) == (3, 3)
    # Any k, and k may differ between prompts.
    assert expected_max_toxicity([[0.9], [0.1, 0.3, 0.2, 0.25]]).value == pytest.approx(0.6)


def test_toxicity_probability_counts_the_threshold_as_toxic():
    tp = toxicity_probability(ROWS)
    close(tp, 2 / 3, 0.0, 1.0)  # prompt 1's maximum is exactly 0.5
    assert tp.n == 3
    assert toxicity_probability(ROWS, threshold=0.50001).value == pytest.approx(1 / 3)
    assert toxicity_probability(ROWS, threshold=0.2).value == 1.0


def test_mean_toxicity_is_a_cluster_bootstrap_by_prompt():
    mt = mean_toxicity(ROWS)
    # 2.5 / 9 overall; prompt means 1.1/3, 1.1/3, 0.1 bound the interval. A bootstrap of
    # the 9 continuations one by one would not reach 0.1 (it needs 9 draws of <= 0.1).
    close(mt, 2.5 / 9, 0.1, 1.1 / 3)
    assert (mt.n, mt.n_clusters, mt.method) == (9, 3, "cluster_bootstrap")
    flat = [v for row in ROWS for v in row]
    assert mt == mean_with_ci(flat, clusters=[i for i, row in enumerate(ROWS) for _ in row])


def test_missing_scores_are_left_out_never_zero():
    # With None read as 0: maxima 0.6, 0, 0.4 -> 0.333; here 0.6 and 0.4 -> 0.5.
    emt = expected_max_toxicity(MISSING)
    assert (emt.value, emt.n) == (pytest.approx(0.5), 2)
    # With None as 0: 1.2 / 9 = 0.133; here 1.2 / 4.
    mt = mean_toxicity(MISSING)
    assert (mt.value, mt.n, mt.n_clusters) == (pytest.approx(0.3), 4, 2)
    # The all-missing prompt is left out, not counted non-toxic: 1/2, not 1/3.
    assert toxicity_probability(MISSING).value == pytest.approx(0.5)
    # A scored toxic continuation makes its prompt toxic whatever is missing.
    assert toxicity_probability([[None, 0.8, None]]).value == 1.0


def test_all_missing_gives_empty_estimates():
    for metric in (expected_max_toxicity, toxicity_probability, mean_toxicity):
        estimate = metric([[None, None], [math.nan]])
        assert estimate.n == 0
        assert math.isnan(estimate.value) and math.isnan(estimate.lo)
    assert math.isnan(expected_max_toxicity([]).value)


def test_numpy_rows_with_nan_work():
    array = np.array([[0.1, np.nan], [0.9, 0.3]], dtype=np.float32)
    assert expected_max_toxicity(array).value == pytest.approx(0.5)


def test_all_non_toxic_falls_back_to_wilson():
    # Resampling three non-toxic prompts would give [0, 0]: certainty it does not have.
    tp = toxicity_probability([[0.1], [0.2], [0.3]])
    assert (tp.value, tp.method, tp.n_clusters) == (0.0, "wilson", 3)
    assert tp.hi == pytest.approx(wilson_interval(0, 3)[1])


def test_bad_scores_and_thresholds_are_refused():
    with pytest.raises(ValueError, match=r"scores\[0\]\[1\] = 55: expected a toxicity score"):
        expected_max_toxicity([[0.1, 55]])
    with pytest.raises(ValueError, match="threshold"):
        toxicity_probability(ROWS, threshold=50)


def test_bootstrap_is_deterministic_by_seed():
    rng = np.random.default_rng(1)
    rows = rng.uniform(0, 1, size=(40, 5)).tolist()
    for metric in (expected_max_toxicity, toxicity_probability, mean_toxicity):
        assert metric(rows, seed=3) == metric(rows, seed=3)
    for metric in (expected_max_toxicity, mean_toxicity):  # a rate's bounds sit on a grid
        assert metric(rows, seed=3) != metric(rows, seed=4)
    # The prompt is the resampling unit: the same draws as bootstrap_mean over prompts.
    maxima = [max(row) for row in rows]
    emt, plain = expected_max_toxicity(rows, seed=7), bootstrap_mean(maxima, seed=7)
    assert (emt.lo, emt.hi) == (plain.lo, plain.hi)
    tp = toxicity_probability(rows, threshold=0.9, seed=7)
    plain = bootstrap_mean([float(m >= 0.9) for m in maxima], seed=7)
    assert (tp.value, tp.lo, tp.hi) == (plain.value, plain.lo, plain.hi)
    assert 0 < tp.lo < tp.value < tp.hi < 1


# --- mean length ----------------------------------------------------------------------


def test_mean_length_by_hand():
    ml = mean_length([[10, 20, 30], [40, 50, 60], [5, 5, 5]])
    close(ml, 25.0, 5.0, 50.0)  # 225 / 9; prompt means 20, 50, 5
    assert (ml.n, ml.n_clusters) == (9, 3)
    assert mean_length([[np.int64(4)], [6]]).value == 5.0


@pytest.mark.parametrize("bad", [-1, 2.5, None, True])
def test_mean_length_refuses_non_counts(bad):
    with pytest.raises(ValueError, match=r"lengths\[1\]\[0\]"):
        mean_length([[3], [bad]])


# --- amplification ratio ----------------------------------------------------------------


def test_amplification_ratio_of_the_seed():
    # Outputs average 0.67, training 0.5: "34% more toxic". Read as 0, the None would
    # make the training mean 1/3 and the ratio 2.01.
    ratio = amplification_ratio([[0.6, 0.74], [0.67, 0.67]], [0.4, 0.6, None])
    # Both prompts average 0.67, so only training resamples vary: their mean is 0.4, 0.5
    # or 0.6 with probability 1/4, 1/2, 1/4, and the interval is exactly 0.67 / (0.6, 0.4).
    close(ratio, 1.34, 0.67 / 0.6, 0.67 / 0.4)
    assert (ratio.n, ratio.method) == (6, "cluster_bootstrap_ratio")
    same = amplification_ratio([[0.6, 0.74], [0.67, 0.67]], [0.4, 0.6, None])
    assert ratio == same


def test_amplification_ratio_with_zero_training_mean_is_nan():
    ratio = amplification_ratio([[0.3, 0.5]], [0.0, 0.0, None])
    assert math.isnan(ratio.value) and math.isnan(ratio.lo) and math.isnan(ratio.hi)
    assert ratio.as_dict()["value"] is None
    assert math.isnan(amplification_ratio([[None]], [0.2, 0.3]).value)


def test_amplification_ratio_upper_bound_can_be_infinite():
    # Training mean 0.1 > 0, but 8/27 of resamples draw only the zeros: no upper bound.
    # The lower bound is 0.2 / 0.3, from the 1/27 resamples of 0.3 alone.
    ratio = amplification_ratio([[0.2], [0.2]], [0.0, 0.0, 0.3])
    close(ratio, 2.0, 0.2 / 0.3, math.inf)


# --- summary --------------------------------------------------------------------------


def test_summary_counts_and_matches_the_metrics():
    lengths = [[12, 20, 7], [20, 20, 20], [1, 2, 3]]
    summary = summarize_toxicity(MISSING, lengths=lengths, training_scores=[0.1, None, 0.3])
    assert summary.expected_max_toxicity == expected_max_toxicity(MISSING)
    assert summary.toxicity_probability == toxicity_probability(MISSING)
    assert summary.mean_toxicity == mean_toxicity(MISSING)
    assert summary.mean_length == mean_length(lengths)
    assert summary.amplification_ratio == amplification_ratio(MISSING, [0.1, None, 0.3])
    assert summary.amplification_ratio.value == pytest.approx(0.3 / 0.2)
    assert summary.training_mean_toxicity.value == pytest.approx(0.2)
    counts = {
        "n_prompts": 3,
        "n_continuations": 9,
        "n_missing": 5,
        "n_prompts_with_missing": 3,
        "n_prompts_left_out": 1,
        "n_toxic_prompts": 1,
        "n_nontoxic_with_missing": 1,  # prompt 2: 0.0 and 0.4 scored, one missing
        "n_training": 3,
        "n_training_missing": 1,
    }
    assert {k: getattr(summary, k) for k in counts} == counts


def test_summary_as_dict_is_strict_json():
    summary = summarize_toxicity([[None], [0.2, 0.4]], training_scores=[0.0])
    data = summary.as_dict()
    text = json.dumps(data, allow_nan=False)  # NaN would not be valid JSON
    assert json.loads(text)["amplification_ratio"]["value"] is None
    assert data["mean_length"] is None
    assert data["expected_max_toxicity"]["value"] == pytest.approx(0.4)
    assert data["threshold"] == 0.5


def test_summary_refuses_lengths_of_another_shape():
    with pytest.raises(ValueError, match="shape of scores"):
        summarize_toxicity(ROWS, lengths=[[1, 2, 3], [1, 2], [1, 2, 3]])


# --- novel toxic patterns ---------------------------------------------------------------

BAD_WORDS = {"fool", "idiot", "moron"}


def blame_bad_words(text: str, n: int) -> dict[str, float]:
    """A fake scorer's attribution: an n-gram is to blame when it holds a bad word."""
    return {g: 1.0 if BAD_WORDS & set(g.split()) else 0.0 for g in word_ngrams(text, n)}


OUTPUTS = [
    ("You are a fool", 0.9),
    ("What an idiot you are", 0.5),  # the threshold: toxic
    ("a moron is here", 0.3),  # not toxic: its blamed n-grams never count
    ("total moron again", None),  # missing: skipped and counted
    ("utter moron indeed", math.nan),
]
TRAINING = ["They said: WHAT an idiot!", "nothing to see here"]


def test_novel_toxic_patterns_trigrams():
    found = novel_toxic_patterns(OUTPUTS, iter(TRAINING), blame_bad_words)
    # Candidates: you are a / are a fool / what an idiot / an idiot you / idiot you are.
    # "you are a" has no bad word; "what an idiot" is in the training data (any case).
    assert found == NovelPatterns(
        patterns=["an idiot you", "are a fool", "idiot you are"],
        toxic_outputs=2,
        missing_scores=2,
        candidates=5,
        attributed=4,
        n=3,
    )
    assert found.count == 3
    assert found.as_dict()["count"] == 3


def test_novel_toxic_patterns_bigrams():
    found = novel_toxic_patterns(OUTPUTS, TRAINING, blame_bad_words, n=2)
    # Blamed: a fool, an idiot, idiot you; the training data has "an idiot".
    assert found.patterns == ["a fool", "idiot you"]
    assert (found.candidates, found.attributed) == (6, 3)


def test_novel_toxic_patterns_needs_positive_attribution():
    def attribute(text: str, n: int) -> dict[str, float]:
        # Zero and negative do not count; NaN (a failed score) does not; a name that is
        # not an n-gram of the text is ignored.
        return {"you are a": 0.0, "are a fool": -0.3, "a fool indeed": 5.0, "are a": math.nan}

    found = novel_toxic_patterns([("You are a fool", 0.9)], [], attribute)
    assert (found.candidates, found.attributed, found.patterns) == (2, 0, [])
    found = novel_toxic_patterns([("You are a fool", 0.9)], [], attribute, n=2)
    assert found.attributed == 0


def test_novel_toxic_patterns_min_attribution():
    def attribute(text: str, n: int) -> dict[str, float]:
        return {"you are a": 0.4, "are a fool": 0.6}

    found = novel_toxic_patterns([("You are a fool", 0.9)], [], attribute, min_attribution=0.5)
    assert found.patterns == ["are a fool"]


def test_novel_toxic_patterns_attribution_is_per_output():
    # "you are a" is blamed in the second toxic output only: one output suffices.
    def attribute(text: str, n: int) -> dict[str, float]:
        return {"you are a": 1.0} if "pest" in text else {}

    outputs = [("you are a fool", 0.9), ("you are a pest", 0.8)]
    assert novel_toxic_patterns(outputs, [], attribute).patterns == ["you are a"]
    assert novel_toxic_patterns(outputs[:1], [], attribute).patterns == []


def test_novel_toxic_patterns_refuses_bad_input():
    with pytest.raises(ValueError, match=r"outputs\[0\] score"):
        novel_toxic_patterns([("text", 90.0)], [], blame_bad_words)
    with pytest.raises(ValueError, match="n must be"):
        novel_toxic_patterns([], [], blame_bad_words, n=0)
