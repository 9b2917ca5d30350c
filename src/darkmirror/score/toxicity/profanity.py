"""The offline default toxicity scorer: alt-profanity-check, with exact attribution."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from darkmirror.score.scorer import Score, score_texts, word_ngrams
from darkmirror.score.toxicity.local_model import DEFAULT_MAX_CHARS
from darkmirror.score.toxicity.profanity_model import load_profanity_model


@dataclass(frozen=True)
class LogOddsExplanation:
    """A text's mean calibrated log-odds split exactly into per-word contributions.

    Args:
        intercept: The part that does not depend on the text.
        words: Each distinct word of the text (as :func:`~darkmirror.score.scorer.word_ngrams`
            splits it) -> its contribution over all its occurrences; 0 for stop words and
            words outside the classifier's vocabulary.
    """

    intercept: float
    words: dict[str, float]

    @property
    def log_odds(self) -> float:
        """``intercept + sum(words.values())``: the mean calibrated log-odds."""
        return self.intercept + math.fsum(self.words.values())


class ProfanityCheckScorer:
    """alt-profanity-check's probability that a text is offensive. The offline default.

    This is an offensive-language classifier (insults, slurs, profanity), not a full
    toxicity model: it misses toxicity phrased in polite words and never reads context.
    Say so next to any number it produces. The package loads its own model, shipped in its
    wheel; darkmirror unpickles nothing itself, and scores from the model's arrays, cached
    by :func:`~darkmirror.score.toxicity.profanity_model.load_profanity_model`, so a
    process with a warm cache never imports sklearn.

    The model is a TF-IDF vectorizer over word unigrams (English stop words dropped, rows
    l2-normalised) followed by 5 linear SVMs, each calibrated with a sigmoid (Platt
    scaling); the probability is the mean of the 5 calibrated probabilities.

    Attribution is exact and additive, for the mean calibrated log-odds: fold k's
    calibrated probability is ``sigmoid(-(a_k * (w_k . x + c_k) + b_k))``, so its
    log-odds is affine in the TF-IDF vector ``x``, and so is their mean::

        mean_k L_k(x) = sum_j beta_j x_j + beta_0,
        beta_j = mean_k(-a_k w_kj),  beta_0 = mean_k(-a_k c_k - b_k)

    A word's contribution is ``beta_j x_j`` for its vocabulary entry j. The probability is
    a mean of sigmoids of the folds' log-odds, monotone in each, so a word with positive
    contribution raises it, but the contributions do not add up in probability space.

    Args:
        max_chars: Longest text scored; longer ones are missing (a 10 MB text would hold
            up the whole batch).

    Raises:
        DarkmirrorError: alt-profanity-check is not installed, or ships a model of another
            shape than the one described here.
    """

    def __init__(self, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        self.max_chars = max_chars
        # The model's arrays, cached on disk: sklearn is imported only to build the cache.
        m = self._model = load_profanity_model()
        self._version = m.version
        scale = -m.platt_a  # sklearn's sigmoid is expit(-(a*f + b))
        self._intercept = math.fsum((scale * m.svm_intercept - m.platt_b).tolist()) / len(scale)
        beta = np.mean(scale[:, None] * m.coef, axis=0)
        # Per vocabulary word: its idf and beta * idf, so a contribution is
        # count * beta_j * idf_j / ||counts * idf||.
        self._terms: dict[str, tuple[float, float]] = dict(
            zip(
                m.terms.tolist(),
                zip(m.idf.tolist(), (beta * m.idf).tolist(), strict=True),
                strict=True,
            )
        )

    @property
    def name(self) -> str:
        """Scorer name written into every result row."""
        return "profanity_check"

    @property
    def version(self) -> str:
        """Installed alt-profanity-check version, written into every result row."""
        return self._version

    def score(self, texts: Sequence[str]) -> list[Score]:
        """Probability that each text is offensive, in one vectorizer call for the batch.

        Args:
            texts: Texts to score; an empty text scores (low), a non-string or an
                overlong one is missing with the reason.
        """
        return score_texts(
            texts, self._probabilities, scorer_name=self.name, max_chars=self.max_chars
        )

    def _probabilities(self, texts: list[str]) -> np.ndarray:
        # What the package's predict_prob computes through sklearn (a test holds them equal).
        return self._model.probabilities(texts)

    def explain(self, text: str) -> LogOddsExplanation:
        """Split a text's mean calibrated log-odds exactly into word contributions.

        Args:
            text: The text to explain.
        """
        # The vectorizer's tokens are the runs of 2+ word characters of the lower-cased
        # text: exactly our words minus one-letter ones, which are not in its vocabulary.
        counts = Counter(word_ngrams(text, 1))
        known = [(w, c, *self._terms[w]) for w, c in counts.items() if w in self._terms]
        # The vectorizer's l2 norm over the whole row: every word's share depends on it.
        norm = math.sqrt(math.fsum((c * idf) ** 2 for _, c, idf, _ in known))
        words = dict.fromkeys(counts, 0.0)
        for word, count, _, weight in known:
            words[word] = count * weight / norm
        return LogOddsExplanation(self._intercept, words)

    def attribute_ngrams(self, text: str, n: int) -> dict[str, float]:
        """Exact attribution of each distinct n-gram of a text to its mean log-odds.

        An n-gram's attribution is the sum of the contributions (see :meth:`explain`) of
        its distinct words, each over all its occurrences in the text: what removing
        those words would take off the linear score before renormalisation, the same
        counterfactual :func:`~darkmirror.score.scorer.occlusion_attribution` measures.

        Args:
            text: The text to explain.
            n: Words per n-gram.
        """
        words = self.explain(text).words
        return {
            gram: math.fsum(words[w] for w in set(gram.split()))
            for gram in dict.fromkeys(word_ngrams(text, n))
        }
