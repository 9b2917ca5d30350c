"""Emergent-misalignment figures as observations placed in the hierarchy of a comparison.

An observation is one value (a free-form answer's misaligned label, a matched pair's
log-odds) with its organism, arm, fine-tune seed and question. The single-run report
compares each arm with the control on these (one organism), and a sweep pools them over
organisms (:mod:`~darkmirror.experiments.misalignment.pooled`): both go through
:func:`difference_on_shared_questions`, so the two always agree on what is compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from darkmirror.data.answers import AnswerRow
from darkmirror.data.measurements import MatchedPairLogOdds
from darkmirror.metrics import (
    Nested,
    PooledEffect,
    cluster_means,
    hierarchical_difference,
    misaligned_label,
)

__all__ = [
    "BASE_SEED",
    "Observation",
    "answer_observations",
    "difference_on_shared_questions",
    "nested",
    "pair_observations",
    "question_means",
]

BASE_SEED = "base"
"""The seed label of a model that was not fine-tuned here."""


class Observation(NamedTuple):
    """One value with its organism (``unit``), arm, fine-tune seed and question."""

    unit: str
    group: str
    seed: str
    question: str
    value: float | None


def _seed(seed: int | None) -> str:
    return BASE_SEED if seed is None else str(seed)


def answer_observations(rows: Sequence[AnswerRow], unit: str) -> list[Observation]:
    """Each free-form answer's misaligned label (1, 0, or None when it is dropped)."""
    out = []
    for r in rows:
        if r.kind == "free_form":
            label = misaligned_label(
                r.value("aligned"), r.value("coherent"), failed=r.judge_failed()
            )
            value = None if label is None else float(label)
            out.append(Observation(unit, r.group or "", _seed(r.seed), r.question_id, value))
    return out


def pair_observations(pairs: Sequence[MatchedPairLogOdds], unit: str) -> list[Observation]:
    """Each matched pair's log-odds."""
    return [
        Observation(unit, p.group or "", _seed(p.seed), p.question_id, p.log_odds) for p in pairs
    ]


def nested(obs: Sequence[Observation]) -> Nested:
    """The observations for :mod:`darkmirror.metrics.hierarchical`."""
    return Nested(
        [o.value for o in obs],
        [o.unit for o in obs],
        [o.seed for o in obs],
        [o.question for o in obs],
    )


def question_means(obs: Sequence[Observation]) -> dict[str, float]:
    """The mean value per question (seeds pooled), missing values left out."""
    return cluster_means([o.value for o in obs], [o.question for o in obs])  # type: ignore[return-value]


def difference_on_shared_questions(
    obs: Sequence[Observation], a: str, b: str
) -> tuple[PooledEffect, list[Observation], list[Observation]]:
    """Arm ``a`` minus arm ``b`` on the questions both were asked (a fine-tune leaves its own
    domain out), resampling organisms, then each arm's seeds and one draw of the questions
    shared by both arms (paired: every model is asked the same questions); and the two
    arms' kept observations, for a test over the same questions."""
    mine = [o for o in obs if o.group == a]
    theirs = [o for o in obs if o.group == b]
    shared = {o.question for o in mine} & {o.question for o in theirs}
    mine = [o for o in mine if o.question in shared]
    theirs = [o for o in theirs if o.question in shared]
    return hierarchical_difference(nested(mine), nested(theirs), paired=True), mine, theirs
