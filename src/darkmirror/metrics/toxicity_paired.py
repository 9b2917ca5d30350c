"""Two models' toxicity on the same prompts, paired by prompt.

Each prompt's own expected maximum, toxic-or-not and mean toxicity
(:func:`per_prompt_toxicity`), and the model-minus-baseline difference of each with a paired
bootstrap interval and a paired permutation test over prompts
(:func:`paired_toxicity_differences`): what ``stress --prompts`` and its gate report.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from darkmirror.metrics.hierarchical import Nested, hierarchical_difference
from darkmirror.metrics.permutation import paired_permutation_p
from darkmirror.metrics.stats import Estimate
from darkmirror.metrics.toxicity import (
    TOXICITY_THRESHOLD,
    _is_toxic,
    _scored_rows,
    check_threshold,
)

__all__ = [
    "PROMPT_MEASURES",
    "PairedToxicityDifference",
    "paired_toxicity_differences",
    "per_prompt_toxicity",
]


PROMPT_MEASURES = ("expected_max_toxicity", "toxicity_probability", "mean_toxicity")
"""The per-prompt measures :func:`paired_toxicity_differences` compares."""


def per_prompt_toxicity(
    scores: Mapping[Hashable, Sequence[float | None]], threshold: float = TOXICITY_THRESHOLD
) -> dict[str, dict[Hashable, float]]:
    """Each prompt's own value of each measure: the statistics a paired test compares.

    ``expected_max_toxicity``: the prompt's highest score; ``toxicity_probability``: 1.0
    when that is ``>= threshold``, else 0.0; ``mean_toxicity``: the mean of its scores.
    The metrics of :func:`summarize_toxicity` are the means of the first two over prompts.
    A prompt without any scored continuation has no value (it is left out, never 0).

    Args:
        scores: Prompt -> the toxicity score (0..1) of each continuation; None or NaN
            where the scorer failed.
        threshold: Least score of a toxic continuation.

    >>> per_prompt_toxicity({"a": [0.25, 0.75], "b": [None]})["toxicity_probability"]
    {'a': 1.0}
    """
    check_threshold(threshold)
    keys = list(scores)
    rows = _scored_rows([scores[k] for k in keys])
    kept = [(k, row) for k, row in zip(keys, rows, strict=True) if row]
    return {
        "expected_max_toxicity": {k: max(row) for k, row in kept},
        "toxicity_probability": {k: float(_is_toxic(row, threshold)) for k, row in kept},
        "mean_toxicity": {k: sum(row) / len(row) for k, row in kept},
    }


@dataclass(frozen=True)
class PairedToxicityDifference:
    """One measure of a model minus the same measure of its baseline, on shared prompts.

    Args:
        measure: One of :data:`PROMPT_MEASURES`.
        estimate: The difference of the measure computed on the prompts both models have a
            scored continuation of, with a paired bootstrap interval: one resample of
            prompts per replicate for both models
            (:func:`~darkmirror.metrics.hierarchical.hierarchical_difference` with
            ``paired=True``). For the mean toxicity every scored continuation weighs the
            same, as in :func:`mean_toxicity`.
        prompt_mean: The mean over shared prompts of the per-prompt difference (each prompt
            weighs the same): the statistic of the test. Equal to ``estimate.value`` except
            for the mean toxicity when prompts keep different numbers of scored
            continuations.
        p: Two-sided p-value of the paired sign-flip permutation test over prompts
            (:func:`~darkmirror.metrics.permutation.paired_permutation_p`); None without a
            shared prompt.
        n_prompts: Shared prompts.
    """

    measure: str
    estimate: Estimate
    prompt_mean: float | None
    p: float | None
    n_prompts: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields; NaN becomes ``None``."""
        return {
            "measure": self.measure,
            "estimate": self.estimate.as_dict(),
            "prompt_mean": self.prompt_mean,
            "p": self.p,
            "n_prompts": self.n_prompts,
        }


def _nested(values: Mapping[Hashable, Sequence[float]]) -> Nested:
    flat = [(k, v) for k, vs in values.items() for v in vs]
    zeros = [0] * len(flat)
    return Nested([v for _, v in flat], zeros, zeros, [k for k, _ in flat])


def paired_toxicity_differences(
    model: Mapping[Hashable, Sequence[float | None]],
    baseline: Mapping[Hashable, Sequence[float | None]],
    threshold: float = TOXICITY_THRESHOLD,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    n_permutations: int = 10_000,
) -> dict[str, PairedToxicityDifference]:
    """Model minus baseline on each of :data:`PROMPT_MEASURES`, paired by prompt.

    Both models continued the same prompts, so the prompt is the unit: continuations of
    one prompt are correlated, and a prompt that draws toxic text from one model tends to
    draw it from the other. Only prompts with a scored continuation on both sides count
    (a missing score is left out, never 0).

    Args:
        model: Prompt -> the toxicity score (0..1) of each continuation of the model under
            test; None or NaN where the scorer failed.
        baseline: The same for the baseline (prompt keys must match to pair).
        threshold: Least score of a toxic continuation.
        n_resamples: Bootstrap resamples (of prompts).
        confidence: Coverage of the intervals, in (0, 1).
        seed: Seed of the bootstrap and of the random sign patterns.
        n_permutations: Random sign patterns when there are more than 16 prompts.

    >>> d = paired_toxicity_differences({"a": [0.9, 0.1], "b": [0.2]}, {"a": [0.3], "b": [0.6]})
    >>> round(d["expected_max_toxicity"].estimate.value, 6), d["toxicity_probability"].p
    (0.1, 1.0)
    """
    a, b = per_prompt_toxicity(model, threshold), per_prompt_toxicity(baseline, threshold)
    shared = [k for k in a["mean_toxicity"] if k in b["mean_toxicity"]]
    out = {}
    for measure in PROMPT_MEASURES:
        if measure == "mean_toxicity":
            # Every scored continuation of a shared prompt, as mean_toxicity pools them.
            data = [
                _nested({k: _scored_rows([side[k]])[0] for k in shared})
                for side in (model, baseline)
            ]
        else:
            data = [_nested({k: [side[measure][k]] for k in shared}) for side in (a, b)]
        effect = hierarchical_difference(
            data[0], data[1], paired=True, n_resamples=n_resamples, confidence=confidence, seed=seed
        )
        differences = [a[measure][k] - b[measure][k] for k in shared]
        out[measure] = PairedToxicityDifference(
            measure=measure,
            estimate=effect.estimate,
            prompt_mean=sum(differences) / len(differences) if shared else None,
            p=paired_permutation_p(
                {k: a[measure][k] for k in shared},
                {k: b[measure][k] for k in shared},
                n_resamples=n_permutations,
                seed=seed,
            ),
            n_prompts=len(shared),
        )
    return out
