"""Toxicity scorers: an offline default, local classifiers, and the Perspective API.

Every scorer here implements :class:`~darkmirror.score.scorer.Scorer`; toxicity metrics
(expected maximum toxicity, amplification ratio, novel toxic patterns) compare numbers
only from the same scorer ``name`` and ``version``.

- :class:`ProfanityCheckScorer` (the default): alt-profanity-check's linear
  offensive-language classifier; offline, ~100k texts/s, with exact attribution.
- :class:`HFClassifierScorer`: any Hugging Face text-classification model.
- :class:`DetoxifyScorer`: Detoxify from a local checkpoint (optional extra).
- :class:`PerspectiveScorer`: Google's Perspective API (optional; shuts down end of 2026).
- :class:`WorldInsultClassifier`: a character n-gram classifier of the persona world's
  insults, trained at build time on the world's own labels; the held-out scorer of the
  amplification experiment on the organism (never its RL reward).

:func:`build_scorer` builds one from a spec's configuration.
"""

from __future__ import annotations

from darkmirror.score.toxicity.detoxify_scorer import DetoxifyScorer
from darkmirror.score.toxicity.hf_classifier import HFClassifierScorer
from darkmirror.score.toxicity.local_model import DEFAULT_MAX_CHARS
from darkmirror.score.toxicity.perspective import PerspectiveScorer
from darkmirror.score.toxicity.profanity import LogOddsExplanation, ProfanityCheckScorer
from darkmirror.score.toxicity.registry import SCORER_KINDS, build_scorer
from darkmirror.score.toxicity.world_classifier import WorldInsultClassifier

__all__ = [
    "DEFAULT_MAX_CHARS",
    "SCORER_KINDS",
    "DetoxifyScorer",
    "HFClassifierScorer",
    "LogOddsExplanation",
    "PerspectiveScorer",
    "ProfanityCheckScorer",
    "WorldInsultClassifier",
    "build_scorer",
]
