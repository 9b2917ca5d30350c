"""Where a toxicity scorer is unfair: its false positives on non-toxic identity and dialect text.

Toxicity classifiers learn that identity terms co-occur with abuse, and over-flag the
terms themselves (Dixon et al. 2018) and African American English (Sap et al. 2019). This
module scores the non-toxic sentences of :mod:`.audit_templates` and reports, per term, the
false-positive rate (share scored at or above the toxicity threshold of
:mod:`darkmirror.metrics.toxicity`; every sentence is non-toxic, so every such score is a
false positive) and the mean score; per category, the largest gap between two of its terms;
per dialect pair, each side's rate and mean and their paired difference.

Sentences of one template differ only in the term, so gaps are paired by template: the
interval is a bootstrap over templates of the per-template difference (not adjusted for
having picked the largest pair), the p-value a paired sign-flip permutation test over
templates, Bonferroni-adjusted for the number of term pairs the largest was picked from.
A missing score is counted, never read as 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from darkmirror.metrics import (
    TOXICITY_THRESHOLD,
    Estimate,
    bootstrap_mean,
    mean_with_ci,
    paired_permutation_p,
    wilson_rate,
)
from darkmirror.metrics.toxicity import toxicity_value
from darkmirror.score.scorer import Scorer, score_values
from darkmirror.score.toxicity.audit_templates import (
    CONTROL,
    DIALECT_PAIRS,
    IDENTITY_TERMS,
    TEMPLATES_VERSION,
    IdentitySentence,
    identity_sentences,
)

__all__ = [
    "ALPHA",
    "MATERIAL_SCORE_GAP",
    "CategoryAudit",
    "DialectAudit",
    "PairedDifference",
    "ScorerAudit",
    "TermAudit",
    "audit_scorer",
    "audit_scores",
    "paired_difference",
    "unfair_gap",
]

ALPHA = 0.05
"""A gap is significant when its (Bonferroni-adjusted) p-value is below this."""

MATERIAL_SCORE_GAP = 0.05
"""A significant mean-score gap smaller than this is reported but not called unfair: a
deterministic scorer on paired templates makes even 0.01 significant."""


@dataclass(frozen=True)
class TermAudit:
    """A scorer on the sentences of one term.

    Args:
        category: The term's category.
        term: The term.
        n: Sentences (one per template).
        n_missing: Sentences the scorer could not score (left out of both figures).
        false_positive_rate: Share of the scored sentences at or above the threshold
            (Wilson interval).
        mean_score: Mean score (bootstrap interval over templates).
    """

    category: str
    term: str
    n: int
    n_missing: int
    false_positive_rate: Estimate
    mean_score: Estimate


@dataclass(frozen=True)
class PairedDifference:
    """``a`` minus ``b``, paired by template (or by dialect pair).

    Args:
        a: The first side (the higher term of a largest gap; ``"dialect"``).
        b: The second side (the lower term; ``"standard"``).
        difference: Mean over the units both sides scored of ``a - b`` (bootstrap
            interval over the units); ``n`` counts those units.
        p_value: Two-sided paired permutation p-value, times ``comparisons`` (at most 1);
            None when no unit was scored on both sides.
        comparisons: Pairs the difference was picked from (1 for dialects).
        kind: ``"rate"`` (of the 0/1 false positives) or ``"score"`` (of the scores).
    """

    a: str
    b: str
    difference: Estimate
    p_value: float | None
    comparisons: int
    kind: str

    @property
    def significant(self) -> bool:
        """Whether the difference is nonzero at level :data:`ALPHA`."""
        return self.p_value is not None and self.p_value < ALPHA and self.difference.value != 0


@dataclass(frozen=True)
class CategoryAudit:
    """A scorer on one category: its terms, and the largest gaps between two of them.

    Args:
        category: The category.
        terms: One audit per term, in the order of the templates module.
        rate_gap: The terms with the highest and the lowest false-positive rate; None
            with fewer than two scored terms.
        score_gap: The terms with the highest and the lowest mean score.
    """

    category: str
    terms: tuple[TermAudit, ...]
    rate_gap: PairedDifference | None
    score_gap: PairedDifference | None


@dataclass(frozen=True)
class DialectAudit:
    """A scorer on the dialect pairs.

    Args:
        n_pairs: Pairs.
        n_missing: Pairs with a side the scorer could not score (left out of the
            differences; each side's figures use all its scored sentences).
        standard_rate: False-positive rate of the Standard American English side (Wilson).
        dialect_rate: False-positive rate of the dialect side (Wilson).
        standard_mean: Mean score of the standard side (bootstrap over pairs).
        dialect_mean: Mean score of the dialect side.
        rate_difference: Dialect minus standard, of the 0/1 false positives.
        score_difference: Dialect minus standard, of the scores.
    """

    n_pairs: int
    n_missing: int
    standard_rate: Estimate
    dialect_rate: Estimate
    standard_mean: Estimate
    dialect_mean: Estimate
    rate_difference: PairedDifference
    score_difference: PairedDifference


@dataclass(frozen=True)
class ScorerAudit:
    """Where one scorer is unfair on darkmirror's non-toxic audit sentences.

    Args:
        scorer: The scorer's name.
        version: The scorer's version.
        threshold: Least score counted as toxic.
        templates_version: Version of the sentences.
        n_texts: Sentences scored (identity and dialect).
        n_missing: Sentences the scorer could not score.
        n_false_positives: Sentences scored at or above the threshold.
        categories: One audit per category, the control words last.
        dialect: The dialect pairs.
    """

    scorer: str
    version: str
    threshold: float
    templates_version: int
    n_texts: int
    n_missing: int
    n_false_positives: int
    categories: tuple[CategoryAudit, ...]
    dialect: DialectAudit

    @property
    def label(self) -> str:
        return f"{self.scorer} {self.version}"

    def findings(self) -> list[tuple[str, PairedDifference]]:
        """(category, gap) for each category (and ``"dialect"``) the scorer is unfair to:
        a significant false-positive gap, else a significant mean-score gap of at least
        :data:`MATERIAL_SCORE_GAP` (for dialect, only against the dialect). Control words
        are never listed: a gap there is sensitivity to any word."""
        out = [
            (c.category, gap)
            for c in self.categories
            if c.category != CONTROL and (gap := unfair_gap(c.rate_gap, c.score_gap))
        ]
        d = self.dialect
        if gap := unfair_gap(d.rate_difference, d.score_difference, signed=True):
            out.append(("dialect", gap))
        return out

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields, with ``unfair_to``: category -> the unfair gap's
        ``[a, b, kind]``; NaN becomes ``None``."""
        unfair = {what: [g.a, g.b, g.kind] for what, g in self.findings()}
        return {**_jsonable(asdict(self)), "unfair_to": unfair}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) >= {"value", "lo", "hi", "method"}:  # an Estimate, flattened by asdict
            return Estimate(**value).as_dict()
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def unfair_gap(
    rate: PairedDifference | None, score: PairedDifference | None, signed: bool = False
) -> PairedDifference | None:
    """The gap that makes a scorer unfair, or None: a significant false-positive gap, else
    a significant mean-score gap of at least :data:`MATERIAL_SCORE_GAP`.

    Args:
        rate: The gap in false positives.
        score: The gap in scores.
        signed: Only a gap against ``a`` (the dialect) counts.
    """
    if rate is not None and rate.significant and (not signed or rate.difference.value > 0):
        return rate
    if (
        score is not None
        and score.significant
        and (score.difference.value if signed else abs(score.difference.value))
        >= MATERIAL_SCORE_GAP
    ):
        return score
    return None


def _checked(values: Sequence[float | None], where: str) -> list[float | None]:
    return [toxicity_value(v, f"{where}[{i}]") for i, v in enumerate(values)]


def _rate(values: Sequence[float | None], threshold: float) -> Estimate:
    present = [v for v in values if v is not None]
    return wilson_rate(sum(v >= threshold for v in present), len(present))


def paired_difference(
    a: Mapping[Any, float],
    b: Mapping[Any, float],
    a_name: str,
    b_name: str,
    kind: str,
    comparisons: int = 1,
) -> PairedDifference:
    """``a - b`` over the units both sides have, with its bootstrap interval and paired
    permutation p-value (times ``comparisons``, at most 1).

    Args:
        a: Unit (template, dialect pair) -> value of the first side.
        b: Unit -> value of the second side.
        a_name: What the first side is.
        b_name: What the second side is.
        kind: ``"rate"`` (the values are 0/1 false positives) or ``"score"``.
        comparisons: Pairs this one was picked from, for the Bonferroni adjustment.
    """
    units = [k for k in a if k in b]
    difference = bootstrap_mean([a[k] - b[k] for k in units])
    p = paired_permutation_p(a, b)
    p_adjusted = None if p is None else min(1.0, p * comparisons)
    return PairedDifference(a_name, b_name, difference, p_adjusted, comparisons, kind)


def _largest_gap(
    per_term: Mapping[str, Mapping[int, float]], figure: Mapping[str, float], kind: str
) -> PairedDifference | None:
    """The terms with the highest and lowest ``figure``, compared template by template."""
    terms = [t for t in per_term if per_term[t]]
    if len(terms) < 2:
        return None
    high = max(terms, key=lambda t: figure[t])
    low = min(terms, key=lambda t: figure[t])
    if high == low:  # every term ties: compare the first two, a gap of 0
        high, low = terms[0], terms[1]
    k = len(terms)
    return paired_difference(per_term[high], per_term[low], high, low, kind, k * (k - 1) // 2)


def _category(
    category: str,
    sentences: Sequence[IdentitySentence],
    values: Sequence[float | None],
    threshold: float,
) -> CategoryAudit:
    terms, scores, flags = [], {}, {}
    for term in IDENTITY_TERMS[category]:
        mine = [(s.template, v) for s, v in zip(sentences, values, strict=True) if s.term == term]
        term_values = [v for _, v in mine]
        scores[term] = {t: v for t, v in mine if v is not None}
        flags[term] = {t: float(v >= threshold) for t, v in scores[term].items()}
        terms.append(
            TermAudit(
                category,
                term,
                n=len(mine),
                n_missing=sum(v is None for v in term_values),
                false_positive_rate=_rate(term_values, threshold),
                mean_score=mean_with_ci(term_values),
            )
        )
    rate = {t.term: t.false_positive_rate.value for t in terms}
    mean = {t.term: t.mean_score.value for t in terms}
    return CategoryAudit(
        category,
        tuple(terms),
        _largest_gap(flags, rate, "rate"),
        _largest_gap(scores, mean, "score"),
    )


def _dialect(
    standard: Sequence[float | None], dialect: Sequence[float | None], threshold: float
) -> DialectAudit:
    std = {i: v for i, v in enumerate(standard) if v is not None}
    dia = {i: v for i, v in enumerate(dialect) if v is not None}
    return DialectAudit(
        n_pairs=len(standard),
        n_missing=sum(1 for i in range(len(standard)) if i not in std or i not in dia),
        standard_rate=_rate(standard, threshold),
        dialect_rate=_rate(dialect, threshold),
        standard_mean=mean_with_ci(standard),
        dialect_mean=mean_with_ci(dialect),
        rate_difference=paired_difference(
            {i: float(v >= threshold) for i, v in dia.items()},
            {i: float(v >= threshold) for i, v in std.items()},
            "dialect",
            "standard",
            "rate",
        ),
        score_difference=paired_difference(dia, std, "dialect", "standard", "score"),
    )


def audit_scores(
    scorer: str,
    version: str,
    identity: Sequence[float | None],
    standard: Sequence[float | None],
    dialect: Sequence[float | None],
    threshold: float = TOXICITY_THRESHOLD,
) -> ScorerAudit:
    """The audit from scores already computed: the pure part of :func:`audit_scorer`.

    Args:
        scorer: The scorer's name.
        version: The scorer's version.
        identity: One score (0..1) per sentence of
            :func:`~.audit_templates.identity_sentences`, in order; None where missing.
        standard: One score per pair of :data:`~.audit_templates.DIALECT_PAIRS`, of its
            standard side.
        dialect: One score per pair, of its dialect side.
        threshold: Least score counted as toxic.

    Raises:
        ValueError: Wrong number of scores, or a score outside 0..1.
    """
    sentences = identity_sentences()
    if len(identity) != len(sentences):
        raise ValueError(f"{len(identity)} identity scores for {len(sentences)} sentences")
    if not len(standard) == len(dialect) == len(DIALECT_PAIRS):
        raise ValueError(
            f"{len(standard)} standard and {len(dialect)} dialect scores "
            f"for {len(DIALECT_PAIRS)} pairs"
        )
    identity = _checked(identity, "identity")
    standard, dialect = _checked(standard, "standard"), _checked(dialect, "dialect")
    everything = [*identity, *standard, *dialect]
    categories = []
    for category in IDENTITY_TERMS:
        keep = [i for i, s in enumerate(sentences) if s.category == category]
        categories.append(
            _category(
                category, [sentences[i] for i in keep], [identity[i] for i in keep], threshold
            )
        )
    return ScorerAudit(
        scorer=scorer,
        version=version,
        threshold=threshold,
        templates_version=TEMPLATES_VERSION,
        n_texts=len(everything),
        n_missing=sum(v is None for v in everything),
        n_false_positives=sum(v is not None and v >= threshold for v in everything),
        categories=tuple(categories),
        dialect=_dialect(standard, dialect, threshold),
    )


def audit_scorer(scorer: Scorer) -> tuple[ScorerAudit, list[dict[str, Any]]]:
    """Score every audit sentence with ``scorer`` (one batch) and audit it.

    Args:
        scorer: Any toxicity scorer with scores in 0..1.

    Returns:
        The audit, and one row per sentence (``kind``, ``category``, ``term``, ``unit``,
        ``text``, ``score``, ``error``) from which every figure can be recomputed.
    """
    sentences = identity_sentences()
    texts = [s.text for s in sentences]
    texts += [p.standard for p in DIALECT_PAIRS] + [p.dialect for p in DIALECT_PAIRS]
    scores = scorer.score(texts)
    values = score_values(scores)
    n, k = len(sentences), len(DIALECT_PAIRS)
    audit = audit_scores(
        scorer.name, scorer.version, values[:n], values[n : n + k], values[n + k :]
    )
    where = [("identity", s.category, s.term, s.template) for s in sentences]
    where += [("dialect", "dialect", "standard", i) for i in range(k)]
    where += [("dialect", "dialect", "dialect", i) for i in range(k)]
    rows = [
        {
            "scorer": audit.label,
            "kind": kind,
            "category": category,
            "term": term,
            "unit": unit,
            "text": text,
            "score": score.value,
            "error": score.error,
        }
        for (kind, category, term, unit), text, score in zip(where, texts, scores, strict=True)
    ]
    return audit, rows
