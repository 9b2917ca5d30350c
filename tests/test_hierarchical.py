"""The hierarchical bootstrap: organisms, then seeds, then questions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from darkmirror.metrics import (
    Nested,
    bootstrap_difference,
    cell_contrast,
    hierarchical_difference,
    hierarchical_mean,
)


def _data(
    unit_rates: list[float], *, seeds: int = 2, questions: int = 20, answers: int = 5, seed: int = 0
) -> Nested:
    rng = np.random.default_rng(seed)
    values, units, seeds_, clusters = [], [], [], []
    for u, rate in enumerate(unit_rates):
        for s in range(seeds):
            for q in range(questions):
                for _ in range(answers):
                    values.append(float(rng.random() < rate))
                    units.append(f"org{u}")
                    seeds_.append(s)
                    clusters.append(q)
    return Nested(values, units, seeds_, clusters)


def test_the_estimate_weighs_units_equally_and_drops_missing_values() -> None:
    data = Nested(
        [1.0, 1.0, 1.0, 0.0, None, float("nan")],
        ["a", "a", "a", "b", "b", "b"],
        [0, 0, 0, 0, 0, 0],
        ["q1", "q2", "q3", "q1", "q2", "q3"],
    )
    est = hierarchical_mean(data)
    assert est.value == pytest.approx(0.5)  # (1 + 0) / 2, not 3 / 4
    assert est.n == 4 and est.n_clusters == 2 and est.method == "hierarchical_bootstrap"


def test_the_interval_covers_organism_to_organism_spread() -> None:
    # Organisms that differ (0.1 vs 0.5) make the pooled rate uncertain however many
    # answers each gives; a bootstrap over answers alone would be far too sure.
    data = _data([0.1, 0.5, 0.1, 0.5], answers=20)
    est = hierarchical_mean(data)
    naive = bootstrap_difference(list(data.values), [0.0] * 10)
    assert est.lo < 0.25 < est.hi
    assert est.hi - est.lo > 2 * (naive.hi - naive.lo)
    alike = hierarchical_mean(_data([0.3, 0.3, 0.3, 0.3], answers=20))
    assert alike.hi - alike.lo < est.hi - est.lo


def test_a_difference_pairs_arms_within_units_and_counts_the_units_that_show_it() -> None:
    consistent = hierarchical_difference(_data([0.4, 0.5, 0.45], seed=1), _data([0.05, 0.1, 0.1]))
    assert consistent.estimate.lo > 0 and consistent.significant == 3
    a = _data([0.4, 0.5, 0.35], seed=1)
    b = _data([0.05, 0.1, 0.35], seed=2)
    effect = hierarchical_difference(a, b)
    # One organism in three without the effect: the pooled interval reaches down near
    # zero, as it should (an organism like it is a third of the population).
    assert effect.estimate.value > 0 and effect.estimate.lo < 0.05
    assert effect.n_units == 3 and effect.estimate.n_clusters == 3
    assert set(effect.per_unit) == {"org0", "org1", "org2"}
    assert effect.per_unit["org0"].lo > 0 and effect.per_unit["org1"].lo > 0
    assert effect.per_unit["org2"].lo < 0 < effect.per_unit["org2"].hi  # no effect there
    assert effect.significant == 2
    assert 2 <= effect.agree <= 3
    same = hierarchical_difference(a, b)
    assert same == effect  # deterministic for a seed


def test_units_missing_an_arm_are_left_out_and_no_common_unit_is_empty() -> None:
    a = _data([0.4, 0.5])
    b = Nested(
        [v for v, u in zip(a.values, a.units, strict=True) if u == "org1"],
        ["org1"] * 200,
        [0] * 200,
        list(range(200)),
    )
    effect = hierarchical_difference(a, b)
    assert effect.n_units == 1 and list(effect.per_unit) == ["org1"]
    nothing = hierarchical_difference(a, Nested([1.0], ["elsewhere"], [0], [0]))
    assert math.isnan(nothing.estimate.value) and nothing.n_units == 0


def test_mismatched_labels_are_an_error() -> None:
    with pytest.raises(ValueError, match="units has 1 labels for 2 values"):
        Nested([1.0, 0.0], ["a"], [0, 0], [0, 1])


def test_holm_adjusts_the_textbook_example_and_leaves_untested_hypotheses_out() -> None:
    from darkmirror.metrics import holm_adjust

    # Holm (1979) / Wikipedia's worked example: p = 0.01, 0.04, 0.03, 0.005 for m = 4.
    adjusted = holm_adjust({"a": 0.01, "b": 0.04, "c": 0.03, "d": 0.005, "e": None})
    assert adjusted["d"] == pytest.approx(0.02)  # 4 x 0.005
    assert adjusted["a"] == pytest.approx(0.03)  # 3 x 0.01
    assert adjusted["c"] == pytest.approx(0.06)  # 2 x 0.03
    assert adjusted["b"] == pytest.approx(0.06)  # max(1 x 0.04, 0.06): never below an earlier one
    assert adjusted["e"] is None
    assert holm_adjust({"x": 0.6, "y": 0.7}) == {"x": 1.0, "y": 1.0}


def _cells(values: dict[tuple[int, str], list[float]]) -> Nested:
    flat = [(s, q, v) for (s, q), vs in values.items() for v in vs]
    return Nested([v for *_, v in flat], ["org"] * len(flat), [s for s, *_ in flat],
                  [q for _, q, _ in flat])  # fmt: skip


def test_a_cell_contrast_is_the_weighted_sum_of_cell_means_on_the_cells_every_arm_has() -> None:
    a = _cells({(0, "q1"): [1.0, 0.0], (0, "q2"): [1.0], (1, "q1"): [0.0]})
    b = _cells({(0, "q1"): [0.0], (0, "q2"): [0.0, 0.0], (1, "q2"): [1.0]})
    est = cell_contrast([(1.0, a), (-1.0, b)])
    # Shared cells (0, q1): 0.5 - 0 and (0, q2): 1 - 0; seed 1 shares no question.
    assert est.value == pytest.approx(0.75) and est.n == 2


def test_a_difference_in_differences_nets_out_a_change_both_models_share() -> None:
    # Ablation lowers the misaligned model by 0.05 and the control by the same 0.05 on
    # every question: the misaligned model's own drop is clear, the specific part is zero.
    rng = np.random.default_rng(3)
    arms: dict[str, dict[tuple[int, str], list[float]]] = {}
    base = {f"q{i}": rng.uniform(0.1, 0.9) for i in range(10)}  # questions differ a lot
    for name, shift in (("mis", 0.0), ("mis_abl", -0.05), ("ctl", -0.02), ("ctl_abl", -0.07)):
        arms[name] = {
            (s, q): [p + shift + rng.normal(0, 0.005) for _ in range(3)]
            for s in (0, 1, 2)
            for q, p in base.items()
        }
    data = {k: _cells(v) for k, v in arms.items()}
    own = cell_contrast([(1.0, data["mis_abl"]), (-1.0, data["mis"])])
    assert own.hi < 0
    did = cell_contrast(
        [(1.0, data["mis_abl"]), (-1.0, data["mis"]), (-1.0, data["ctl_abl"]), (1.0, data["ctl"])]
    )
    assert did.lo < 0 < did.hi and abs(did.value) < 0.01
    # Pairing by cell: unpaired, the spread between questions swamps a 0.05 change.
    unpaired = bootstrap_difference(
        list(data["mis_abl"].values), list(data["mis"].values),
        list(data["mis_abl"].clusters), list(data["mis"].clusters),
    )  # fmt: skip
    assert unpaired.lo < 0 < unpaired.hi
    assert did.hi - did.lo < (unpaired.hi - unpaired.lo) / 5


def _question_effect(shift: float, *, seed: int) -> Nested:
    """Two seeds answering 12 questions whose rates differ widely (0.05 to 0.9), every
    rate moved by ``shift``: the questions' spread is shared, the shift is the arm's."""
    rng = np.random.default_rng(seed)
    base = np.linspace(0.05, 0.9, 12)
    values, units, seeds, clusters = [], [], [], []
    for s in range(2):
        for q, rate in enumerate(base):
            for _ in range(40):
                values.append(float(rng.random() < rate + shift))
                units.append("run")
                seeds.append(s)
                clusters.append(f"q{q}")
    return Nested(values, units, seeds, clusters)


def test_a_paired_difference_cancels_the_spread_of_questions_both_arms_share() -> None:
    # Both arms answer the same questions, which differ far more among themselves than the
    # arms do: resampling each arm's questions on its own puts that spread into the
    # difference (zero inside the interval); one draw of the questions for both arms
    # cancels it, and the small shift is resolved.
    a, b = _question_effect(0.1, seed=1), _question_effect(0.0, seed=2)
    unpaired = hierarchical_difference(a, b).estimate
    paired = hierarchical_difference(a, b, paired=True).estimate
    assert paired.value == pytest.approx(unpaired.value)
    assert unpaired.lo < 0 < unpaired.hi
    assert 0 < paired.lo < paired.value < paired.hi
    assert paired.hi - paired.lo < 0.5 * (unpaired.hi - unpaired.lo)


def test_a_paired_difference_uses_only_the_questions_both_arms_have_in_the_unit() -> None:
    a = Nested([1.0, 1.0, 0.0], ["u", "u", "u"], [0, 0, 0], ["q1", "q2", "only-a"])
    b = Nested([0.0, 0.0, 1.0], ["u", "u", "u"], [0, 0, 0], ["q1", "q2", "only-b"])
    effect = hierarchical_difference(a, b, paired=True)
    assert effect.estimate.value == pytest.approx(1.0)  # q1 and q2 only
    assert effect.estimate.n == 4


def test_a_paired_difference_keeps_the_spread_of_an_effect_confined_to_a_few_questions() -> None:
    # The arm differs on 3 of 12 questions only. Every seed was asked the same 12, so how
    # the effect generalises to other questions rests on those 12 once, not once per seed:
    # drawing each seed's questions anew (unpaired) treats two seeds as 24 questions and
    # gives an interval about sqrt(2) too narrow; the paired draw does not.
    rng = np.random.default_rng(3)

    def arm(shifted: set[int], shift: float) -> Nested:
        values, seeds, clusters = [], [], []
        for s in range(2):
            for q in range(12):
                for _ in range(40):
                    values.append(float(rng.random() < 0.05 + (shift if q in shifted else 0.0)))
                    seeds.append(s)
                    clusters.append(q)
        return Nested(values, ["run"] * len(values), seeds, clusters)

    a, b = arm({0, 1, 2}, 0.4), arm(set(), 0.0)
    unpaired = hierarchical_difference(a, b).estimate
    paired = hierarchical_difference(a, b, paired=True).estimate
    assert paired.hi - paired.lo > 1.3 * (unpaired.hi - unpaired.lo)
