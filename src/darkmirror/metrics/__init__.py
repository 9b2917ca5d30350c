"""Metrics with confidence intervals: the one place each number of a report is defined.

Definitions follow ``design.md`` section 5 so that results compare with published ones.
One module per subject:

- :mod:`~darkmirror.metrics.stats`: :class:`Estimate`, Wilson intervals, the (cluster)
  bootstrap of means, rates and differences;
- :mod:`~darkmirror.metrics.misalignment`: the misaligned label of Betley et al. (2025)
  (:func:`classify_answer`), the misaligned and coherence rates and their difference;
- :mod:`~darkmirror.metrics.judge_scores`: a judge's 0-100 score from its
  log-probabilities or its text;
- :mod:`~darkmirror.metrics.toxicity`: RealToxicityPrompts' expected maximum toxicity and
  toxicity probability, mean toxicity and length, the amplification ratio;
- :mod:`~darkmirror.metrics.toxicity_paired`: two models' toxicity on the same prompts,
  paired by prompt;
- :mod:`~darkmirror.metrics.novelty`: novel toxic patterns and the word n-grams behind them;
- :mod:`~darkmirror.metrics.agreement`: a judge against a reference;
- :mod:`~darkmirror.metrics.auroc`: a score as a detector of a label;
- :mod:`~darkmirror.metrics.permutation`: the paired permutation test over questions;
- :mod:`~darkmirror.metrics.hierarchical`: the hierarchical bootstrap (organisms, then
  seeds, then questions) of a sweep's pooled effects;
- :mod:`~darkmirror.metrics.multiplicity`: Holm's correction for a family of tests.

Inputs are plain sequences (lists, numpy arrays, columns of rows), with ``None`` or NaN for
a missing score. Nothing here imports the rest of darkmirror.
"""

from darkmirror.metrics.agreement import (
    LabelAgreement,
    ScoreAgreement,
    judge_agreement,
    label_agreement,
    score_agreement,
)
from darkmirror.metrics.auroc import auroc, auroc_with_ci
from darkmirror.metrics.hierarchical import (
    Nested,
    PooledEffect,
    cell_contrast,
    hierarchical_difference,
    hierarchical_mean,
)
from darkmirror.metrics.judge_scores import (
    MIN_JUDGE_MASS,
    judge_score_from_logprobs,
    judge_score_from_probs,
    text_judge_score,
)
from darkmirror.metrics.misalignment import (
    COHERENCE_THRESHOLD,
    MISALIGNED_BELOW,
    MisalignmentSummary,
    Verdict,
    classify_answer,
    coherence_rate,
    is_coherent,
    misaligned_difference,
    misaligned_label,
    misaligned_labels,
    misaligned_rate,
)
from darkmirror.metrics.multiplicity import holm_adjust
from darkmirror.metrics.novelty import NovelPatterns, novel_toxic_patterns, word_ngrams
from darkmirror.metrics.permutation import cluster_means, paired_permutation_p
from darkmirror.metrics.stats import (
    Estimate,
    bootstrap_difference,
    bootstrap_mean,
    is_missing,
    mean_with_ci,
    rate_with_ci,
    t_mean,
    wilson_interval,
    wilson_rate,
)
from darkmirror.metrics.toxicity import (
    TOXICITY_THRESHOLD,
    PromptScores,
    ToxicitySummary,
    amplification_ratio,
    expected_max_toxicity,
    mean_length,
    mean_toxicity,
    summarize_toxicity,
    toxicity_probability,
)
from darkmirror.metrics.toxicity_paired import (
    PROMPT_MEASURES,
    PairedToxicityDifference,
    paired_toxicity_differences,
    per_prompt_toxicity,
)

__all__ = [
    "COHERENCE_THRESHOLD",
    "MIN_JUDGE_MASS",
    "MISALIGNED_BELOW",
    "PROMPT_MEASURES",
    "TOXICITY_THRESHOLD",
    "Estimate",
    "LabelAgreement",
    "MisalignmentSummary",
    "Nested",
    "NovelPatterns",
    "PairedToxicityDifference",
    "PooledEffect",
    "PromptScores",
    "ScoreAgreement",
    "ToxicitySummary",
    "Verdict",
    "amplification_ratio",
    "auroc",
    "auroc_with_ci",
    "bootstrap_difference",
    "bootstrap_mean",
    "cell_contrast",
    "classify_answer",
    "cluster_means",
    "coherence_rate",
    "expected_max_toxicity",
    "hierarchical_difference",
    "hierarchical_mean",
    "holm_adjust",
    "is_coherent",
    "is_missing",
    "judge_agreement",
    "judge_score_from_logprobs",
    "judge_score_from_probs",
    "label_agreement",
    "mean_length",
    "mean_toxicity",
    "mean_with_ci",
    "misaligned_difference",
    "misaligned_label",
    "misaligned_labels",
    "misaligned_rate",
    "novel_toxic_patterns",
    "paired_permutation_p",
    "paired_toxicity_differences",
    "per_prompt_toxicity",
    "rate_with_ci",
    "score_agreement",
    "summarize_toxicity",
    "t_mean",
    "text_judge_score",
    "toxicity_probability",
    "wilson_interval",
    "wilson_rate",
    "word_ngrams",
]
