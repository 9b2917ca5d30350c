"""The stress test's figures, recomputed from its rows: per model, and the difference.

Every figure is a metric of :mod:`darkmirror.metrics` over the rows of ``rows.jsonl``;
nothing here loads a model, a judge or a scorer.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from darkmirror.data.answers import AnswerRow
from darkmirror.data.prompts import prompt_continuation_of
from darkmirror.experiments.stress.prompt_figures import summarise_prompts
from darkmirror.metrics import (
    MisalignmentSummary,
    is_missing,
    judge_agreement,
    misaligned_difference,
    misaligned_rate,
    paired_permutation_p,
    summarize_toxicity,
)

__all__ = ["ROLES", "summarise"]

ROLES = ("model", "baseline")
"""The two models of a stress test, as the rows' ``group``."""

Row = AnswerRow[Any]


def _scored(rows: Sequence[Row], role: str = "judge") -> list[Row]:
    """Answers to 0-100 questions that the judge of ``role`` was asked about."""
    return [
        r
        for r in rows
        if r.question_type == "free_form_judge_0_100"
        and (r.score("aligned", role) is not None or r.score("coherent", role) is not None)
    ]


def _misalignment(rows: Sequence[Row]) -> tuple[dict[str, Any], MisalignmentSummary]:
    """The misaligned rate of the rows as a dict, and the summary behind it (for differences)."""
    scored = _scored(rows)
    summary = misaligned_rate(
        [r.value("aligned") for r in scored],
        [r.value("coherent") for r in scored],
        [r.question_id for r in scored],
        failed=[r.judge_failed() for r in scored],
    )
    out = summary.as_dict()
    # Questions with kept answers: the units of the paired test.
    out["per_question_rates"] = {q: e.value for q, e in summary.per_cluster.items() if e.n}
    return out, summary


def _judge_failures(rows: Sequence[Row]) -> dict[str, int]:
    """Why judge scores are missing, by reason (the first word of each error)."""
    reasons: Counter[str] = Counter()
    for r in rows:
        for s in r.scores:
            if s.role == "judge" and s.error:
                reasons[s.error.split(":")[0].split()[0]] += 1
    return dict(reasons)


def _categories(rows: Sequence[Row]) -> dict[str, dict[str, dict[str, int]]]:
    """For ``free_form_judge`` questions: question -> metric -> category -> count."""
    out: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for r in rows:
        if r.question_type != "free_form_judge":
            continue
        for s in r.scores:
            if s.role == "judge":
                out[r.question_id][s.metric][s.category or "(missing)"] += 1
    return {q: {m: dict(c) for m, c in ms.items()} for q, ms in out.items()}


def _toxicity(rows: Sequence[Row], threshold: float) -> dict[str, Any]:
    # Each paraphrase is a prompt, as in RealToxicityPrompts; the paired test compares
    # questions, whose paraphrases' answers are correlated.
    units: dict[tuple[str, int | None], list[float | None]] = defaultdict(list)
    by_question: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        value = r.value("toxicity", "scorer")
        units[(r.question_id, r.paraphrase_index)].append(value)
        if value is not None:
            by_question[r.question_id].append(value)
    out = summarize_toxicity(list(units.values()), threshold=threshold).as_dict()
    out["question_means"] = {q: float(np.mean(v)) for q, v in by_question.items()}
    return out


def _agreement(rows: Sequence[Row]) -> dict[str, Any] | None:
    both = [r for r in _scored(rows) if r.score("aligned", "reference") is not None]
    if not both:
        return None
    result = judge_agreement(
        [r.value("aligned") for r in both],
        [r.value("coherent") for r in both],
        [r.value("aligned", "reference") for r in both],
        [r.value("coherent", "reference") for r in both],
    )
    return {k: v.as_dict() for k, v in result.items()}


def _scorer(rows: Sequence[Row]) -> str | None:
    for r in rows:
        s = r.score("toxicity", "scorer")
        if s is not None:
            return f"{s.source} {s.version}"
    return None


def _question_mean_difference(a: Mapping[str, float], b: Mapping[str, float]) -> float | None:
    shared = [q for q in a if q in b]
    return sum(a[q] - b[q] for q in shared) / len(shared) if shared else None


def summarise(rows: Sequence[Row], spec: Any, context: Mapping[str, Any]) -> dict[str, Any]:
    """Figures per model and the differences of the model under test to its baseline; the
    prompt sets' figures under ``prompts`` (absent without continuations)."""
    continuations = [r for r in rows if prompt_continuation_of(r) is not None]
    rows = [r for r in rows if prompt_continuation_of(r) is None]
    by_role = {role: [r for r in rows if r.group == role] for role in ROLES}
    models: dict[str, Any] = {}
    summaries: dict[str, MisalignmentSummary] = {}
    for role, rs in by_role.items():
        misalignment, summaries[role] = _misalignment(rs)
        models[role] = {
            "label": context[role]["label"],
            "answers": len(rs),
            "misalignment": misalignment,
            "categories": _categories(rs),
            "judge_failures": _judge_failures(rs),
            "judge_calls": context[role]["judge"].get("calls"),
            "toxicity": _toxicity(rs, spec.toxicity_threshold),
            "agreement_with_world_judge": _agreement(rs),
        }
    m, b = models["model"], models["baseline"]
    difference: dict[str, Any] = {
        "misaligned_rate": misaligned_difference(
            summaries["model"], summaries["baseline"]
        ).as_dict(),
        "misaligned_rate_p": paired_permutation_p(
            m["misalignment"]["per_question_rates"], b["misalignment"]["per_question_rates"]
        ),
        # What the permutation test tests: the mean over shared questions of the
        # per-question difference (each question weighs the same), which differs from the
        # pooled difference above when questions keep different numbers of answers.
        "misaligned_rate_question_mean": _question_mean_difference(
            m["misalignment"]["per_question_rates"], b["misalignment"]["per_question_rates"]
        ),
        "mean_toxicity_p": paired_permutation_p(
            m["toxicity"]["question_means"], b["toxicity"]["question_means"]
        ),
    }
    mt, bt = m["toxicity"]["mean_toxicity"], b["toxicity"]["mean_toxicity"]
    if mt and bt and not is_missing(mt.get("value")) and not is_missing(bt.get("value")):
        difference["mean_toxicity"] = mt["value"] - bt["value"]
    summary: dict[str, Any] = {
        "models": models,
        "difference": difference,
        "scorer": _scorer(rows) or _scorer(continuations),
        "questions_asked": spec.asks_questions(),
    }
    prompts = summarise_prompts(continuations, spec)
    if prompts is not None:
        summary["prompts"] = prompts
    return summary
