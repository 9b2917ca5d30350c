"""The interface every text scorer implements, and attribution of a score to word n-grams.

A scorer maps texts to numbers (a toxicity probability, say) and never lets one bad item
sink a batch: an item it cannot score comes back as a missing :class:`Score` with the
reason, and a missing score is never read as 0. Only setup problems (a package, a
checkpoint or an API key that is missing) raise, as :class:`~darkmirror.errors.DarkmirrorError`.

Attribution says which word n-grams of a text make it score high; the novel-toxic-pattern
metric counts n-grams with positive attribution. :func:`word_ngrams` is the one tokeniser
behind every attribution and every n-gram metric, so their n-grams always match.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from darkmirror.errors import DarkmirrorError
from darkmirror.metrics.novelty import WORD, word_ngrams

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Score:
    """One scorer's verdict on one text.

    Args:
        value: The score, or None when the item could not be scored.
        error: Why the value is missing; required exactly when ``value`` is None.

    Raises:
        ValueError: A missing value without a reason, a reason next to a value, or a
            value that is not a finite number.
    """

    value: float | None
    error: str | None = None

    def __post_init__(self) -> None:
        if self.value is None:
            if not self.error:
                raise ValueError("a missing score needs the reason in `error`")
            return
        if self.error is not None:
            raise ValueError(f"a score with a value ({self.value}) cannot carry an error")
        value = float(self.value)
        if not math.isfinite(value):
            raise ValueError(f"a score must be a finite number, got {self.value!r}")
        object.__setattr__(self, "value", value)  # numpy scalars become plain floats

    @classmethod
    def failed(cls, reason: str) -> Score:
        """A missing score, with the reason it is missing."""
        return cls(None, reason)

    @property
    def is_missing(self) -> bool:
        """Whether the item could not be scored."""
        return self.value is None


def score_values(scores: Sequence[Score]) -> list[float | None]:
    """The values of scores, None where missing: the input the metrics take.

    Args:
        scores: Scores, as a scorer returns them.
    """
    return [s.value for s in scores]


@runtime_checkable
class Scorer(Protocol):
    """Scores texts; ``name`` and ``version`` go into every result row.

    ``score`` returns one :class:`Score` per text, in order. It never raises for a bad item
    (not a string, too long, a failed request): that item is missing, with the reason. It
    raises :class:`~darkmirror.errors.DarkmirrorError` only for setup problems.
    """

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    def score(self, texts: Sequence[str]) -> list[Score]: ...


@runtime_checkable
class AttributingScorer(Scorer, Protocol):
    """A scorer that can say how much of a text's score each word n-gram causes."""

    def attribute_ngrams(self, text: str, n: int) -> dict[str, float]:
        """Attribution of every distinct word n-gram of ``text`` (see :func:`word_ngrams`).

        Positive means the n-gram makes the text score higher (more toxic).
        """
        ...


def occlusion_attribution(scorer: Scorer, text: str, n: int) -> dict[str, float]:
    """Attribution of each n-gram by occlusion, for any scorer.

    The attribution of an n-gram is ``score(text) - score(text without its words)``, where
    every occurrence of each of the n-gram's words (as :func:`word_ngrams` finds them) is
    cut out of the text and the rest of it, punctuation and case included, is kept. So a
    positive value means the n-gram's words raise the score. The text and all its
    occluded versions are scored in one ``score`` call, so a batched scorer pays for one
    batch per text.

    Occlusion measures what removing the words does, interactions included; it is not an
    additive decomposition: the attributions need not sum to the score.

    Args:
        scorer: Any scorer.
        text: The text to explain.
        n: Words per n-gram.

    Returns:
        Distinct n-gram -> attribution, in order of first occurrence; NaN where the text
        or its occluded version could not be scored.
    """
    grams = list(dict.fromkeys(word_ngrams(text, n)))
    if not grams:
        return {}
    occluded = [_without_words(text, frozenset(gram.split())) for gram in grams]
    base, *rest = scorer.score([text, *occluded])
    return {
        gram: math.nan if base.value is None or s.value is None else base.value - s.value
        for gram, s in zip(grams, rest, strict=True)
    }


def _without_words(text: str, drop: frozenset[str]) -> str:
    lowered = text.lower()
    # str.lower maps each character to one or more; equal lengths mean positions line up,
    # so spans found in the lowered text can be cut from the original (case kept).
    source = text if len(lowered) == len(text) else lowered
    pieces, last = [], 0
    for match in WORD.finditer(lowered):
        if match.group() in drop:
            pieces.append(source[last : match.start()])
            last = match.end()
    pieces.append(source[last:])
    return "".join(pieces)


def text_problem(text: object, max_chars: int) -> str | None:
    """Why an item cannot be scored as text, or None when it can.

    Args:
        text: An item handed to a scorer.
        max_chars: Longest text accepted, so one huge item cannot stall a batch.
    """
    if not isinstance(text, str):
        return f"expected a string, got {type(text).__name__}"
    if len(text) > max_chars:
        return f"text has {len(text):,} characters; this scorer takes at most {max_chars:,} (max_chars)"
    return None


def score_texts(
    texts: Sequence[object],
    score_batch: Callable[[list[str]], Sequence[float]],
    *,
    scorer_name: str,
    max_chars: int,
    batch_size: int | None = None,
) -> list[Score]:
    """Score texts in batches, isolating the items that fail.

    Items that are not strings or are longer than ``max_chars`` are missing without being
    sent. When a batch raises, its texts are scored one by one, so only the item that
    fails is missing, with the exception as the reason; a non-finite value is missing too.
    :class:`~darkmirror.errors.DarkmirrorError` (a setup problem) is raised, not recorded.

    Args:
        texts: The items to score.
        score_batch: Scores a list of valid texts, one float per text, in order.
        scorer_name: Name used in log messages.
        max_chars: See :func:`text_problem`.
        batch_size: Texts per ``score_batch`` call; None sends all in one call. With a
            batch size, texts are grouped by length, which cuts padding for models.
    """
    results: list[Score | None] = [None] * len(texts)
    valid: list[int] = []
    for i, text in enumerate(texts):
        problem = text_problem(text, max_chars)
        if problem is None:
            valid.append(i)
        else:
            results[i] = Score.failed(problem)
    if batch_size is None:
        chunks = [valid] if valid else []
    else:
        valid.sort(key=lambda i: len(texts[i]))  # type: ignore[arg-type]
        chunks = [valid[k : k + batch_size] for k in range(0, len(valid), batch_size)]
    for chunk in chunks:
        for i, score in zip(
            chunk, _score_chunk(texts, chunk, score_batch, scorer_name), strict=True
        ):
            results[i] = score
    return results  # type: ignore[return-value]


def _score_chunk(
    texts: Sequence[object],
    chunk: list[int],
    score_batch: Callable[[list[str]], Sequence[float]],
    scorer_name: str,
) -> list[Score]:
    batch: list[str] = [texts[i] for i in chunk]  # type: ignore[misc]
    try:
        values = list(score_batch(batch))
        if len(values) != len(batch):
            raise ValueError(f"returned {len(values)} values for {len(batch)} texts")
    except DarkmirrorError:
        raise
    except Exception as exc:
        if len(batch) == 1:
            return [Score.failed(f"{type(exc).__name__}: {exc}")]
        logger.warning(
            "%s: a batch of %d texts failed (%s: %s); scoring them one by one",
            scorer_name,
            len(batch),
            type(exc).__name__,
            exc,
        )
        return [s for i in chunk for s in _score_chunk(texts, [i], score_batch, scorer_name)]
    return [_as_score(v) for v in values]


def _as_score(value: float) -> Score:
    value = float(value)
    return Score(value) if math.isfinite(value) else Score.failed(f"scorer returned {value}")
