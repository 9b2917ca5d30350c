"""Every figure of the persona report, computed from the run's rows and measurements.

The answers (``rows.jsonl``) and the matched pairs are selected by their
:class:`~darkmirror.experiments.persona.records.Condition` (which model, under which
intervention); the directions, the probe, the held-out projections and the neutral prompts
are measurements of their own. Every statistic is one of :mod:`darkmirror.metrics`.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from darkmirror.data.answers import AnswerRow
from darkmirror.experiments.persona.records import (
    Condition,
    DirectionStats,
    HeldoutProjection,
    NeutralProjection,
    PersonaLogOdds,
    ProbeAccuracy,
)
from darkmirror.metrics import (
    Nested,
    auroc,
    auroc_with_ci,
    bootstrap_difference,
    cell_contrast,
    classify_answer,
    mean_with_ci,
    misaligned_difference,
    misaligned_rate,
)

__all__ = ["GROUPS", "Results", "summarise"]

GROUPS = ("base", "control", "misaligned")
"""The arms of the experiment, in table order."""


def _tags(item: AnswerRow[Any] | PersonaLogOdds) -> dict[str, Any]:
    condition = item.condition if isinstance(item, PersonaLogOdds) else item.extension
    return {
        "group": item.group,
        "seed": item.seed,
        **(condition or Condition()).model_dump(exclude={"kind"}),
    }


@dataclass(frozen=True)
class Results:
    """Answers and matched pairs, each with its tags (group, seed and condition)."""

    answers: list[tuple[dict[str, Any], AnswerRow[Any]]]
    pairs: list[tuple[dict[str, Any], PersonaLogOdds]]

    @classmethod
    def of(cls, rows: Sequence[AnswerRow[Any]], pairs: Sequence[PersonaLogOdds]) -> Results:
        return cls([(_tags(r), r) for r in rows], [(_tags(p), p) for p in pairs])

    def where(self, **tags: Any) -> Results:
        """The answers and pairs whose tags equal ``tags``; a tuple value admits any of
        its members."""

        def match(t: Mapping[str, Any]) -> bool:
            return all(t[k] in v if isinstance(v, tuple) else t[k] == v for k, v in tags.items())

        return Results(
            [a for a in self.answers if match(a[0])], [p for p in self.pairs if match(p[0])]
        )

    def plain(self, group: str) -> Results:
        """A group's models without any intervention."""
        return self.where(group=group, intervention="none")

    def on_questions(self, questions: Collection[str]) -> Results:
        """The answers and pairs to these questions."""
        return Results(
            [a for a in self.answers if a[1].question_id in questions],
            [p for p in self.pairs if p[1].question_id in questions],
        )

    def nested(self, figure: str) -> Nested:
        """One figure of each answer or pair, placed by seed and question (one organism):
        ``misaligned`` (1, 0, or None when dropped), ``coherent`` (None when unscored) or
        ``log_odds``."""
        if figure == "log_odds":
            items = [(t, p.question_id, p.log_odds) for t, p in self.pairs]
        else:
            items = []
            for t, r in self.answers:
                if r.kind != "free_form":
                    continue
                verdict = classify_answer(
                    r.value("aligned"), r.value("coherent"), failed=r.judge_failed()
                )
                value = {
                    "misaligned": {"misaligned": 1.0, "aligned": 0.0},
                    "coherent": {"misaligned": 1.0, "aligned": 1.0, "incoherent": 0.0},
                }[figure].get(verdict)
                items.append((t, r.question_id, value))
        return Nested(
            [v for *_, v in items],
            ["organism"] * len(items),
            [t["seed"] for t, *_ in items],
            [q for _, q, _ in items],
        )

    def without_domain(self, domain: str | None) -> Results:
        if domain is None:
            return self
        return Results(
            [a for a in self.answers if a[1].domain != domain],
            [p for p in self.pairs if p[1].domain != domain],
        )

    def __bool__(self) -> bool:
        return bool(self.answers or self.pairs)


def _cluster(tags: Mapping[str, Any], question_id: str) -> Hashable:
    # Seeds pooled: answers cluster by (seed, random draw, question).
    return (tags["seed"], tags["draw"], question_id)


def evaluation(results: Results) -> dict[str, Any]:
    """Misaligned rate, coherence and matched-pair log-odds (seeds pooled); the ``_``
    keys keep what :func:`difference` needs and stay out of the summary."""
    free = [(t, r) for t, r in results.answers if r.kind == "free_form"]
    summary = misaligned_rate(
        [r.value("aligned") for _, r in free],
        [r.value("coherent") for _, r in free],
        [_cluster(t, r.question_id) for t, r in free],
        failed=[r.judge_failed() for _, r in free],
    )
    log_odds = [p.log_odds for _, p in results.pairs]
    clusters = [_cluster(t, p.question_id) for t, p in results.pairs]
    return {
        "rate": summary.rate.as_dict(),
        "coherent": summary.coherence.as_dict(),
        "log_odds": mean_with_ci(log_odds, clusters).as_dict(),
        "answers": len(free),
        "misaligned": summary.n_misaligned,
        "scored": summary.n_scored,
        "_summary": summary,
        "_log_odds": log_odds,
        "_log_odds_clusters": clusters,
    }


def difference(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """``a - b`` in misaligned rate and log-odds, with bootstrap intervals."""
    out = {
        "rate": misaligned_difference(a["_summary"], b["_summary"]).as_dict(),
        "log_odds": bootstrap_difference(
            a["_log_odds"], b["_log_odds"], a["_log_odds_clusters"], b["_log_odds_clusters"]
        ).as_dict(),
    }
    before, after = b["rate"]["value"], a["rate"]["value"]
    out["relative_rate"] = (
        None if before in (None, 0) or after is None else (after - before) / before
    )
    return out


def public(figures: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in figures.items() if not k.startswith("_")}


def _models(results: Results) -> dict[str, Any]:
    out = {}
    for group in GROUPS:
        chosen = results.plain(group)
        if chosen:
            out[group] = public(evaluation(chosen))
    return out


def _directions(stats: Sequence[DirectionStats]) -> dict[str, Any]:
    """Per direction and layer: norm, counts and cosines, per seed and averaged."""
    table: dict[str, Any] = {}
    for s in stats:
        d = table.setdefault(s.direction, {})
        layer = d.setdefault(str(s.layer), {"seeds": {}})
        layer["seeds"][str(s.seed)] = {"norm": s.norm, "counts": s.counts, "cosine": s.cosine}
    for d in table.values():
        for layer in d.values():
            per_seed = list(layer["seeds"].values())
            keys = per_seed[0]["cosine"].keys()
            layer["cosine"] = {k: float(np.mean([s["cosine"][k] for s in per_seed])) for k in keys}
            layer["norm"] = float(np.mean([s["norm"] for s in per_seed]))
    return table


def _aurocs(projections: Sequence[HeldoutProjection]) -> dict[str, Any]:
    """AUROC of each direction's projection on held-out answers, per seed and layer."""
    held = [p for p in projections if p.label is not None]
    out: dict[str, Any] = {}
    for seed in sorted({p.seed for p in held}):  # type: ignore[type-var]
        answers = [p for p in held if p.seed == seed]
        labels = [bool(p.label) for p in answers]
        # Paraphrases of one question are not independent: the question is the unit.
        clusters = [p.question_id for p in answers]
        names = list(answers[0].projections) if answers else []
        n_layers = len(answers[0].projections[names[0]]) if names else 0
        per_seed: dict[str, Any] = {
            "misaligned": sum(labels),
            "aligned": len(labels) - sum(labels),
        }
        for name in [n for n in names if not n.startswith("random")]:
            per_seed[name] = [
                auroc_with_ci(
                    [p.projections[name][layer] for p in answers], labels, clusters
                ).as_dict()
                for layer in range(n_layers)
            ]
        randoms = [n for n in names if n.startswith("random")]
        if randoms:
            # Several random draws: their mean, and the range they span.
            values = [
                [auroc([p.projections[n][layer] for p in answers], labels) for n in randoms]
                for layer in range(n_layers)
            ]
            per_seed["random"] = [
                {
                    "value": float(np.mean(v)),
                    "lo": float(np.min(v)),
                    "hi": float(np.max(v)),
                    "n": len(labels),
                    "method": f"mean and range of {len(v)} draws",
                }
                for v in values
            ]
        out[str(seed)] = per_seed
    return out


def _neutral(projections: Sequence[NeutralProjection], layer: int) -> dict[str, Any]:
    """Mean projection of each model's neutral-prompt activations on the direction."""
    if not projections:
        return {}
    n_layers = len(projections[0].projection)
    out: dict[str, Any] = {"layers": {}}
    for i in range(n_layers):
        groups = {}
        for group in GROUPS:
            g = [p for p in projections if p.group == group]
            groups[group] = ([p.projection[i] for p in g], [(p.domain, p.prompt_index) for p in g])
        figures = {g: mean_with_ci(v, c).as_dict() for g, (v, c) in groups.items()}
        for a, b in (("misaligned", "control"), ("misaligned", "base"), ("control", "base")):
            figures[f"{a} - {b}"] = bootstrap_difference(
                groups[a][0], groups[b][0], groups[a][1], groups[b][1]
            ).as_dict()
        out["layers"][str(i)] = figures
    out["layer"] = layer
    return out


def _steering(results: Results, alphas: Sequence[float]) -> dict[str, Any]:
    steered = results.where(intervention="steer")
    out: dict[str, Any] = {}
    for label in ("persona", "random"):
        curve = []
        for alpha in alphas:
            g = steered.where(alpha=alpha, direction=(label, "none"))
            curve.append({"alpha": alpha, **evaluation(g)} if g else {"alpha": alpha})
        out[label] = curve
    out["persona - random"] = [
        {"alpha": p["alpha"], **difference(p, q)} if "rate" in p and "rate" in q else None
        for p, q in zip(out["persona"], out["random"], strict=True)
    ]
    for label in ("persona", "random"):
        out[label] = [public(p) for p in out[label]]
    return out


def _ablation(results: Results) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for group in ("misaligned", "control"):
        ablated = results.where(intervention="ablate", group=group)
        if not ablated:
            continue
        figures = {
            "none": evaluation(results.plain(group)),
            "persona": evaluation(ablated.where(direction="persona")),
            "random": evaluation(ablated.where(direction="random")),
        }
        out[group] = {
            **{k: public(v) for k, v in figures.items()},
            "persona - none": difference(figures["persona"], figures["none"]),
            "random - none": difference(figures["random"], figures["none"]),
        }
    return out


def _specificity(results: Results) -> dict[str, Any]:
    """What ablating the persona direction does to the misaligned model net of what it does
    to the control, per figure (misaligned rate, matched-pair log-odds, coherent share):
    each model's change, and the difference in differences, (misaligned ablated -
    misaligned) - (control ablated - control), each taken per (seed, question) and pooled
    over seeds, then questions (:func:`~darkmirror.metrics.cell_contrast`)."""
    arms = {
        (group, condition): (
            results.plain(group)
            if condition == "none"
            else results.where(intervention="ablate", group=group, direction="persona")
        )
        for group in ("misaligned", "control")
        for condition in ("none", "persona")
    }
    if not all(arms.values()):
        return {}
    out = {}
    for figure in ("misaligned", "log_odds", "coherent"):
        m0, m1, c0, c1 = (
            arms[(g, c)].nested(figure)
            for g in ("misaligned", "control")
            for c in ("none", "persona")
        )
        out[figure] = {
            "misaligned": cell_contrast([(1.0, m1), (-1.0, m0)]).as_dict(),
            "control": cell_contrast([(1.0, c1), (-1.0, c0)]).as_dict(),
            "net": cell_contrast([(1.0, m1), (-1.0, m0), (-1.0, c1), (1.0, c0)]).as_dict(),
        }
    return out


def _realign(results: Results, sizes: Sequence[int], domain: str | None) -> dict[str, Any]:
    curve = []
    for n in sizes:
        g = results.plain("misaligned") if n == 0 else results.where(group="realign", n=n)
        curve.append({"n": n, **public(evaluation(g.without_domain(domain)))})
    references = {
        group: public(evaluation(results.plain(group).without_domain(domain)))
        for group in ("base", "control")
    }
    return {"domain": domain, "curve": curve, "references": references}


def _heldout_of(measurements: Sequence[Any]) -> list[str]:
    """The held-out questions of a run whose context predates recording them: those of the
    held-out answers the directions step projected."""
    return sorted({m.question_id for m in measurements if isinstance(m, HeldoutProjection)})


def summarise(
    rows: Sequence[AnswerRow[Any]],
    measurements: Sequence[Any],
    spec: Any,
    context: Mapping[str, Any],
) -> dict[str, Any]:
    """Every figure of the report (see :func:`~.report.write_report`)."""
    layer = context["layer"]
    heldout = set(context.get("heldout_questions") or _heldout_of(measurements))
    results = Results.of(rows, [m for m in measurements if isinstance(m, PersonaLogOdds)])
    probe = [
        {"layer": m.layer, "test_accuracy": m.test_accuracy, "train_accuracy": m.train_accuracy}
        for m in measurements
        if isinstance(m, ProbeAccuracy)
    ]
    return {
        "layer": layer,
        "seeds": list(spec.finetune.seeds),
        "chance_cosine": context["chance_cosine"],
        "models": _models(results),
        "probe": probe,
        "directions": _directions([m for m in measurements if isinstance(m, DirectionStats)]),
        "auroc": _aurocs([m for m in measurements if isinstance(m, HeldoutProjection)]),
        "neutral": _neutral([m for m in measurements if isinstance(m, NeutralProjection)], layer),
        "steering": _steering(results, spec.steering.alphas),
        "ablation": _ablation(results),
        # The direction is found on the other questions: these figures are out of sample.
        "heldout_questions": sorted(heldout),
        "steering_heldout": _steering(results.on_questions(heldout), spec.steering.alphas),
        "ablation_heldout": _ablation(results.on_questions(heldout)),
        "specificity": {
            "all": _specificity(results),
            "heldout": _specificity(results.on_questions(heldout)),
        },
        "realign": _realign(results, spec.realign.sizes, context.get("realign_domain")),
    }
