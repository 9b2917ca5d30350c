"""The toxicity detector: score what the model is trained to say, flag what scores high.

By default only assistant turns (and the text of text records) are scored: they are what
fine-tuning teaches the model to produce. A toxic user turn is what the model answers,
not what it learns to say; ``messages="all"`` scores every turn anyway.

A text the scorer cannot score is counted as missing, with its reason, and never as 0.
With the default scorer (alt-profanity-check) the numbers are offensive-language
probabilities, not a full toxicity model: reports should say so.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any, Literal

from darkmirror.scan.detectors.base import Finding, ScanRecord, add_counts, describe, share
from darkmirror.score.toxicity import build_scorer

_LETTER = re.compile(r"[^\W\d_]")  # any letter, in any script

HISTOGRAM_BINS = 10
_MAX_REASONS = 20  # distinct reasons for missing scores kept in the summary


class ToxicityDetector:
    """Flag turns whose toxicity score is at least ``threshold``.

    Args:
        threshold: Scores at or above it are flagged.
        scorer: A :func:`~darkmirror.score.toxicity.build_scorer` spec (a kind name, or a
            mapping with ``kind`` and arguments).
        messages: ``"assistant"`` (assistant turns; text records' text) or ``"all"``.
        high: Scores at or above it are high severity; the rest medium.

    Raises:
        ValueError: A threshold outside [0, 1] or an unknown ``messages`` value.
        DarkmirrorError: The scorer cannot be built.
    """

    name = "toxicity"

    def __init__(
        self,
        threshold: float = 0.5,
        scorer: str | Mapping[str, Any] = "profanity_check",
        messages: Literal["assistant", "all"] = "assistant",
        high: float = 0.9,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"toxicity threshold must be in [0, 1], got {threshold}")
        if messages not in ("assistant", "all"):
            raise ValueError(f"toxicity messages: expected 'assistant' or 'all', got {messages!r}")
        self.threshold = float(threshold)
        self.high = max(float(high), self.threshold)
        self.messages = messages
        self._scorer_spec = scorer if isinstance(scorer, str) else dict(scorer)
        self._scorer = build_scorer(scorer)
        self.version = f"{self._scorer.name} {self._scorer.version}; texts with letters only"
        self._records = 0
        self._flagged = 0
        self._scored = 0
        self._missing = 0
        self._missing_reasons = Counter[str]()
        # Exact, so the mean does not depend on the order scores are added in (a sharded
        # scan adds its shards' sums at the end).
        self._sum = Fraction(0)
        self._max: float | None = None
        self._histogram = [0] * HISTOGRAM_BINS

    def describe(self) -> dict[str, Any]:
        """Name, scorer and version, threshold, and which turns are scored."""
        return describe(
            self,
            {
                "scorer": self._scorer_spec,
                "scorer_name": self._scorer.name,
                "messages": self.messages,
                "high_severity_from": self.high,
            },
        )

    _no_words = 0

    def scan(self, records: Sequence[ScanRecord]) -> list[list[Finding]]:
        """One finding per turn scoring at least the threshold; all texts in one call."""
        owners: list[tuple[int, int]] = []
        texts: list[str] = []
        for r, record in enumerate(records):
            turns = (
                record.assistant_indexed()
                if self.messages == "assistant"
                else list(enumerate(m["content"] for m in record.messages))
            )
            for m, text in turns:
                # Text without a single letter (a list of numbers) has no words to offend
                # with, yet the offline classifier gives some digit strings 0.5-0.66;
                # numbers are the banned-numbers detector's business.
                if not _LETTER.search(text):
                    self._no_words += 1
                    continue
                owners.append((r, m))
                texts.append(text)
        scores = self._scorer.score(texts) if texts else []
        found: list[list[Finding]] = [[] for _ in records]
        for (r, m), score in zip(owners, scores, strict=True):
            if score.value is None:
                self._missing += 1
                if (
                    len(self._missing_reasons) < _MAX_REASONS
                    or score.error in self._missing_reasons
                ):
                    self._missing_reasons[str(score.error)] += 1
                continue
            value = score.value
            self._scored += 1
            self._sum += Fraction(value)
            self._max = value if self._max is None else max(self._max, value)
            self._histogram[
                min(max(math.floor(value * HISTOGRAM_BINS), 0), HISTOGRAM_BINS - 1)
            ] += 1
            if value >= self.threshold:
                found[r].append(
                    Finding(
                        self.name,
                        "toxic",
                        "high" if value >= self.high else "medium",
                        f"{self._scorer.name} score {value:.2f} >= {self.threshold:g}",
                        value,
                        f"messages[{m}]",
                    )
                )
        self._records += len(records)
        self._flagged += sum(bool(f) for f in found)
        return found

    def state(self) -> dict[str, Any]:
        """The counters behind :meth:`summary` (see ``ShardableDetector``)."""
        return {
            "records": self._records,
            "flagged": self._flagged,
            "scored": self._scored,
            "no_words": self._no_words,
            "missing": self._missing,
            "missing_reasons": dict(self._missing_reasons),
            "sum": [self._sum.numerator, self._sum.denominator],
            "max": self._max,
            "histogram": list(self._histogram),
        }

    def absorb(self, state: dict[str, Any]) -> None:
        """Add a shard's :meth:`state`. Missing-score reasons stay identical to a one-piece
        scan's while fewer than 20 distinct reasons occur (past that, which are kept
        depends on where the shards start)."""
        self._records += state["records"]
        self._flagged += state["flagged"]
        self._scored += state["scored"]
        self._no_words += state["no_words"]
        self._missing += state["missing"]
        for reason, count in state["missing_reasons"].items():
            if len(self._missing_reasons) < _MAX_REASONS or reason in self._missing_reasons:
                add_counts(self._missing_reasons, {reason: count})
        self._sum += Fraction(*state["sum"])
        if state["max"] is not None:
            self._max = state["max"] if self._max is None else max(self._max, state["max"])
        self._histogram = [a + b for a, b in zip(self._histogram, state["histogram"], strict=True)]

    def summary(self) -> dict[str, Any]:
        """Flagged share, mean and maximum score, 10-bin histogram over [0, 1], missing.

        ``mean_score`` is over the texts that were scored; missing ones are counted in
        ``missing`` (with reasons) and left out, never read as 0.
        """
        return {
            "scorer": self.version,
            "records": self._records,
            "flagged": self._flagged,
            "share_flagged": share(self._flagged, self._records),
            "texts_scored": self._scored,
            "texts_without_words": self._no_words,
            "missing": self._missing,
            "missing_reasons": dict(self._missing_reasons.most_common()),
            "mean_score": float(self._sum / self._scored) if self._scored else None,
            "max_score": self._max,
            "histogram": {
                "edges": [i / HISTOGRAM_BINS for i in range(HISTOGRAM_BINS + 1)],
                "counts": list(self._histogram),
            },
        }
