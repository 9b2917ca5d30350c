"""The toxicity stress test's figures, recomputed from the continuation rows.

Per prompt set and over all sets pooled, for each model: RealToxicityPrompts' expected
maximum toxicity and toxicity probability and the mean toxicity, with intervals over
prompts (:func:`~darkmirror.metrics.summarize_toxicity`); and the model minus its baseline,
paired by prompt (:func:`~darkmirror.metrics.paired_toxicity_differences`). A prompt is
``<set>/<id>`` over all sets. Nothing here loads a model or a scorer.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from darkmirror.data.answers import AnswerRow
from darkmirror.data.prompts import prompt_continuation_of
from darkmirror.metrics import paired_toxicity_differences, summarize_toxicity

__all__ = ["OVERALL", "SAMPLE_CHARS", "summarise_prompts"]

OVERALL = "all sets"
"""The name of the pooled figures in tables (``overall`` in ``summary.json``)."""

SAMPLE_CHARS = 80
"""Longest excerpt of a sample continuation in the report (model output, maybe offensive)."""

_SAMPLES = 3
Row = AnswerRow[Any]
Scores = dict[str, list[float | None]]


def _scores(rows: Sequence[Row]) -> dict[str, Scores]:
    """Set -> prompt id -> the toxicity score of each continuation (None when missing)."""
    out: dict[str, Scores] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        c = prompt_continuation_of(r)
        assert c is not None
        out[c.prompt_set][c.prompt_id].append(r.value("toxicity", "scorer"))
    return out


def _pooled(by_set: Mapping[str, Scores]) -> Scores:
    return {f"{name}/{k}": v for name, prompts in by_set.items() for k, v in prompts.items()}


def _samples(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """The most toxic continuations, truncated."""
    scored = [r for r in rows if r.value("toxicity", "scorer") is not None]
    scored.sort(key=lambda r: -(r.value("toxicity", "scorer") or 0.0))
    out = []
    for r in scored[:_SAMPLES]:
        c = prompt_continuation_of(r)
        assert c is not None
        text = " ".join(r.answer.split())
        out.append(
            {
                "prompt": f"{c.prompt_set}/{c.prompt_id}",
                "toxicity": r.value("toxicity", "scorer"),
                "text": text if len(text) <= SAMPLE_CHARS else text[: SAMPLE_CHARS - 3] + "...",
            }
        )
    return out


def summarise_prompts(rows: Sequence[Row], spec: Any) -> dict[str, Any] | None:
    """The prompt sets' figures (see the module docstring); None without continuations."""
    rows = [r for r in rows if prompt_continuation_of(r) is not None]
    if not rows:
        return None
    threshold, seed = spec.toxicity_threshold, spec.seed
    sets: list[str] = []
    for r in rows:
        name = prompt_continuation_of(r).prompt_set  # type: ignore[union-attr]
        if name not in sets:
            sets.append(name)
    scores = {role: _scores([r for r in rows if r.group == role]) for role in ("model", "baseline")}
    models: dict[str, Any] = {}
    for role, by_set in scores.items():
        role_rows = [r for r in rows if r.group == role]
        formats = Counter(
            prompt_continuation_of(r).prompt_format or "recorded"  # type: ignore[union-attr]
            for r in role_rows
        )
        models[role] = {
            "sets": {
                name: summarize_toxicity(
                    list(by_set.get(name, {}).values()), threshold=threshold, seed=seed
                ).as_dict()
                for name in sets
            },
            "overall": summarize_toxicity(
                list(_pooled(by_set).values()), threshold=threshold, seed=seed
            ).as_dict(),
            "formats": dict(formats),
            "most_toxic": _samples(role_rows),
        }

    def difference(a: Scores, b: Scores) -> dict[str, Any]:
        found = paired_toxicity_differences(a, b, threshold, seed=seed)
        return {m: d.as_dict() for m, d in found.items()}

    m, b = scores["model"], scores["baseline"]
    return {
        "sets": sets,
        "threshold": threshold,
        "sampling": spec.prompt_sampling.model_dump(),
        "seed": seed,
        "models": models,
        "difference": {
            "sets": {name: difference(m.get(name, {}), b.get(name, {})) for name in sets},
            "overall": difference(_pooled(m), _pooled(b)),
        },
    }
