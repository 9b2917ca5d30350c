"""The scorer audit as Markdown: the full tables of ``darkmirror audit-scorer``, and the short
"Scorer audit" section every toxicity report adds for the scorer it used.

:func:`shipped_scorers` says which of darkmirror's scorer kinds audit themselves without a
model file or the network, and why the others do not.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from darkmirror.errors import DarkmirrorError
from darkmirror.metrics import TOXICITY_THRESHOLD
from darkmirror.report.format import fmt_estimate, markdown_table
from darkmirror.score.scorer import Scorer
from darkmirror.score.toxicity.audit import (
    ALPHA,
    MATERIAL_SCORE_GAP,
    CategoryAudit,
    DialectAudit,
    PairedDifference,
    ScorerAudit,
    audit_scorer,
    unfair_gap,
)
from darkmirror.score.toxicity.audit_templates import (
    CONTROL,
    DIALECT_PAIRS,
    IDENTITY_TERMS,
    TEMPLATES,
)
from darkmirror.score.toxicity.registry import SCORER_KINDS, build_scorer

__all__ = [
    "Skipped",
    "audit_markdown",
    "audit_section",
    "fmt_p",
    "shipped_scorers",
    "verdict",
]

ScorerLike = Scorer | str | Mapping[str, Any]
"""A scorer, or its configuration as :func:`~.registry.build_scorer` takes it."""

_NOT_OFFLINE = {
    "hf": "loads a classifier from a local directory darkmirror cannot guess: "
    "--scorer hf:model=DIR",
    "detoxify": "needs a local Detoxify checkpoint darkmirror cannot guess: "
    "--scorer detoxify:checkpoint=FILE",
    "perspective": "calls Google's Perspective API (online, about 1,300 requests per audit): "
    "--scorer perspective, with PERSPECTIVE_API_KEY set",
}
"""Scorer kinds not audited by default, and why: each needs a model file or the network."""


@dataclass(frozen=True)
class Skipped:
    """A scorer not audited, and why."""

    kind: str
    reason: str


def shipped_scorers() -> tuple[list[Scorer], list[Skipped]]:
    """Every shipped scorer kind that runs offline with its defaults, built; the others,
    each with the reason it is skipped (a kind that fails to build says its error)."""
    built, skipped = [], []
    for kind in SCORER_KINDS:
        reason = _NOT_OFFLINE.get(kind)
        if kind == "detoxify" and importlib.util.find_spec("detoxify") is None:
            reason = f"{reason}; and detoxify is not installed (pip install 'darkmirror[detoxify]')"
        if reason:
            skipped.append(Skipped(kind, reason))
            continue
        try:
            built.append(build_scorer(kind))
        except DarkmirrorError as exc:
            skipped.append(Skipped(kind, str(exc)))
    return built, skipped


def verdict(audit: ScorerAudit) -> list[str]:
    """Where ``audit``'s scorer is unfair, in plain sentences: one overall, one on false
    positives, then one per category and one for dialect."""
    findings = audit.findings()
    flags = [_finding(w, g) for w, g in findings if g.kind == "rate"]
    scores = [_finding(w, g) for w, g in findings if g.kind == "score"]
    if not findings:
        head = (
            f"{audit.label}: no significant unfairness on these sentences (which does not "
            "prove there is none)."
        )
    else:
        head = f"{audit.label} is UNFAIR."
        if flags:
            head += f" It flags non-toxic text as toxic more often for: {'; '.join(flags)}."
        if scores:
            head += (
                f" It scores non-toxic text higher by {MATERIAL_SCORE_GAP} or more, without "
                f"flagging it significantly more often, for: {'; '.join(scores)}."
            )
    scored = audit.n_texts - audit.n_missing
    control = next((c.score_gap for c in audit.categories if c.category == CONTROL), None)
    floor = (
        " For comparison, swapping innocuous control words moves its mean score by up to "
        f"{control.difference.value:.3f}."
        if control is not None
        else ""
    )
    lines = [
        head,
        f"It flags {audit.n_false_positives} of {scored} non-toxic sentences as toxic "
        f"(score >= {audit.threshold}); {audit.n_missing} could not be scored.{floor}",
    ]
    lines += [_category_verdict(c) for c in audit.categories]
    lines.append(_dialect_verdict(audit.dialect))
    return lines


def _finding(what: str, gap: PairedDifference) -> str:
    if what == "dialect":
        return "dialect (African American English / informal spelling over standard)"
    return f"{what} ({gap.a!r} over {gap.b!r})"


def fmt_p(p: float | None) -> str:
    """A p-value for a report: three decimals, ``< 0.001`` below that, ``n/a`` when none."""
    return "n/a" if p is None else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def _category_verdict(c: CategoryAudit) -> str:
    name = "control words (no identity)" if c.category == CONTROL else c.category
    if c.rate_gap is None or c.score_gap is None:
        return f"{name}: too few terms scored to compare."
    rates = {t.term: t.false_positive_rate.value for t in c.terms}
    r, s = c.rate_gap, c.score_gap
    if r.significant:
        return (
            f"{name}: {'sensitive to an innocuous word' if c.category == CONTROL else 'UNFAIR'}: "
            f"sentences with {r.a!r} are flagged toxic {rates[r.a]:.0%} of the time, with "
            f"{r.b!r} {rates[r.b]:.0%} (gap {r.difference.value:.2f}, p {fmt_p(r.p_value)})."
        )
    if s.significant and s.difference.value >= MATERIAL_SCORE_GAP:
        return (
            f"{name}: scores {s.a!r} {s.difference.value:.2f} higher than {s.b!r} on average "
            f"(p {fmt_p(s.p_value)}), though not significantly more often over the threshold."
        )
    return (
        f"{name}: no significant gap (largest false-positive gap {r.difference.value:.2f}, "
        f"{r.a!r} vs {r.b!r}, p {fmt_p(r.p_value)}; largest mean-score gap "
        f"{s.difference.value:.3f}, p {fmt_p(s.p_value)})."
    )


def _dialect_verdict(d: DialectAudit) -> str:
    r, s = d.rate_difference, d.score_difference
    rates = (
        f"flagged {d.dialect_rate.value:.0%} vs {d.standard_rate.value:.0%} of the time; mean "
        f"score {s.difference.value:+.3f} (p {fmt_p(s.p_value)})"
    )
    gap = unfair_gap(r, s, signed=True)
    if gap is not None:
        return f"dialect: UNFAIR to African American English / informal spelling: {rates}."
    return f"dialect: no significant penalty on African American English: {rates}."


def _difference(gap: PairedDifference, rates: bool) -> str:
    if gap.difference.value == 0 and gap.difference.lo == gap.difference.hi == 0:
        return "none"  # every unit the same on both sides
    return fmt_estimate(gap.difference.as_dict(), digits=2 if rates else 3)


def _gap_cell(gap: PairedDifference | None, rates: bool) -> str:
    if gap is None:
        return "n/a"
    difference = _difference(gap, rates)
    return difference if difference == "none" else f"{gap.a!r} - {gap.b!r}: {difference}"


def _gap_table(audit: ScorerAudit) -> str:
    rows = [
        [
            c.category,
            _gap_cell(c.rate_gap, rates=True),
            fmt_p(c.rate_gap.p_value if c.rate_gap else None),
            _gap_cell(c.score_gap, rates=False),
            fmt_p(c.score_gap.p_value if c.score_gap else None),
        ]
        for c in audit.categories
    ]
    d = audit.dialect
    rows.append(
        [
            "dialect (AAE - SAE)",
            _difference(d.rate_difference, rates=True),
            fmt_p(d.rate_difference.p_value),
            _difference(d.score_difference, rates=False),
            fmt_p(d.score_difference.p_value),
        ]
    )
    header = ["category", "largest false-positive gap", "p", "largest mean-score gap", "p"]
    return markdown_table(header, rows)


def _term_table(audit: ScorerAudit) -> str:
    rows = [
        [
            t.category,
            t.term,
            t.n - t.n_missing,
            t.n_missing,
            fmt_estimate(t.false_positive_rate.as_dict(), percent=True),
            fmt_estimate(t.mean_score.as_dict(), digits=3),
        ]
        for c in audit.categories
        for t in c.terms
    ]
    header = ["category", "term", "scored", "missing", "false-positive rate", "mean score"]
    return markdown_table(header, rows)


def _dialect_table(audit: ScorerAudit) -> str:
    d = audit.dialect
    rows = [
        [
            side,
            d.n_pairs,
            fmt_estimate(rate.as_dict(), percent=True),
            fmt_estimate(mean.as_dict(), digits=3),
        ]
        for side, rate, mean in (
            ("Standard American English", d.standard_rate, d.standard_mean),
            ("African American English / informal", d.dialect_rate, d.dialect_mean),
        )
    ]
    return markdown_table(["side", "sentences", "false-positive rate", "mean score"], rows)


def _method(threshold: float) -> str:
    return (
        f"Every sentence is non-toxic, so a score >= {threshold} (darkmirror's toxicity "
        f"threshold) is a false positive. {len(TEMPLATES)} templates, each filled with every "
        f"term of a category ({sum(map(len, IDENTITY_TERMS.values()))} terms, control words "
        f"included: the noise floor of an innocuous word swap), and {len(DIALECT_PAIRS)} "
        "dialect pairs (Standard American English, SAE; African American English or informal "
        "spelling, AAE). Gaps are paired by template "
        "(or pair): interval by bootstrap over templates, p by paired permutation, "
        "Bonferroni over the term pairs the largest was picked from. A scorer is called "
        f"unfair on a significant (p < {ALPHA}) false-positive gap, or a significant mean-score "
        f"gap of at least {MATERIAL_SCORE_GAP}. Missing scores are counted, never 0."
    )


def audit_markdown(audits: Sequence[ScorerAudit], skipped: Sequence[Skipped]) -> str:
    """The whole audit: per scorer its verdict and tables; then the scorers skipped."""
    threshold = audits[0].threshold if audits else TOXICITY_THRESHOLD
    lines = ["# Toxicity scorer audit", "", _method(threshold), ""]
    for audit in audits:
        lines += [f"## {audit.label}", "", *(f"- {v}" for v in verdict(audit)), ""]
        lines += ["### Largest gaps", "", _gap_table(audit), ""]
        lines += ["### Per term", "", _term_table(audit), ""]
        lines += ["### Dialect pairs", "", _dialect_table(audit), ""]
    if skipped:
        lines += ["## Not audited", ""]
        lines += [f"- **{s.kind}**: {s.reason}" for s in skipped]
        lines.append("")
    return "\n".join(lines)


def _kind(scorer: str | Mapping[str, Any]) -> str:
    return str(scorer if isinstance(scorer, str) else scorer.get("kind"))


def audit_section(*scorers: ScorerLike | None) -> str:
    """The "Scorer audit" section of a toxicity report: for each scorer, its verdict and
    the largest gap of each category and of dialect.

    A scorer given by configuration is built here only when its kind runs offline without
    a model file (a report loads no model and calls no API); for the others the section
    says which command audits them. It never raises: a scorer that fails is reported.

    Args:
        scorers: The scorers the report used, or their configurations; None is skipped
            (an optional held-out scorer, say).
    """
    lines = ["## Scorer audit", "", _method(TOXICITY_THRESHOLD), ""]
    for scorer in scorers:
        if scorer is None:
            continue
        if not isinstance(scorer, Scorer):
            kind = _kind(scorer)
            if kind in _NOT_OFFLINE:
                lines += [
                    f"**{kind}**: not audited here (a report loads no model and calls no API); "
                    f"`darkmirror audit-scorer --scorer {kind}:...` audits it.",
                    "",
                ]
                continue
            try:
                scorer = build_scorer(scorer)
            except DarkmirrorError as exc:
                lines += [f"**{kind}**: not audited: {exc}", ""]
                continue
        audit, _ = audit_scorer(scorer)
        overall, false_positives, *_ = verdict(audit)
        lines += [f"- {overall}", f"- {false_positives}", "", _gap_table(audit), ""]
    return "\n".join(lines)
