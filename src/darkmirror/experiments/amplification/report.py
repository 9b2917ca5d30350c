"""Summary and report of the toxicity-amplification experiment, from its rows and measurements.

Every figure is computed from the continuation rows (``rows.jsonl``), the measurements
(``measurements.jsonl``: the training data's toxicity, the RL's rewards, each variant's
novel toxic patterns) and the spec, so ``darkmirror report RUN`` rebuilds the report from
the run's files alone. Nothing here loads a model or a scorer: the scorer's attribution of
novel patterns is a step of the run (:func:`~.steps.find_novel_patterns`); only the "Scorer
audit" section builds the scorers that need no model file and no network, to audit them.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from darkmirror.data.answers import read_rows
from darkmirror.data.measurements import Measurement, read_measurements
from darkmirror.experiments.amplification.records import (
    TOXICITY,
    TOXICITY_HELDOUT,
    AmplificationMeasurement,
    ContinuationRow,
    GRPOStep,
    NovelToxicPatterns,
    TrainingTextToxicity,
)
from darkmirror.experiments.amplification.spec import AmplificationSpec
from darkmirror.experiments.amplification.variants import VARIANT_LABELS
from darkmirror.metrics import NovelPatterns, amplification_ratio, summarize_toxicity
from darkmirror.report.format import fmt_estimate, markdown_table, write_text_atomic
from darkmirror.report.plots import save_figure
from darkmirror.runner import load_finished_run
from darkmirror.score.toxicity.audit_report import audit_section

__all__ = ["rebuild", "summarise", "training_scores", "write_report"]


_PARTS = {
    "continuation": "comments' second halves, cut as the prompts are cut",
    "comment": "whole comments",
}
"""What the training data's toxicity was measured on, in words."""


def _units(
    rows: Sequence[ContinuationRow], metric: str = TOXICITY
) -> tuple[list[list[float | None]], list[list[int]]]:
    """Scores (of ``metric``) and lengths per (prompt, seed): each seed's continuations of
    a prompt are one unit of the bootstrap."""
    scores: dict[tuple[str, int | None], list[float | None]] = defaultdict(list)
    lengths: dict[tuple[str, int | None], list[int]] = defaultdict(list)
    for r in rows:
        key = (r.question_id, r.seed)
        scores[key].append(r.value(metric, "scorer"))
        lengths[key].append(r.extension.tokens if r.extension is not None else 0)
    return list(scores.values()), list(lengths.values())


def training_scores(
    measurements: Sequence[Measurement], metric: str = TOXICITY
) -> tuple[list[float | None], list[float | None], str]:
    """The training texts' scores by ``metric``'s scorer: the denominator of the
    amplification ratio, the whole comments' scores, and which part the denominator is.

    The denominator is each comment's second half, cut as the prompts are cut (a
    continuation stands for that half); a run from before halves were scored falls back
    to whole comments, and says so.
    """
    mine = sorted(
        (m for m in measurements if isinstance(m, TrainingTextToxicity) and m.metric == metric),
        key=lambda m: m.index,
    )
    whole = [m.value for m in mine if m.part == "comment"]
    halves = [m.value for m in mine if m.part == "continuation"]
    return (halves, whole, "continuation") if halves else (whole, whole, "comment")


def _novel(found: NovelToxicPatterns) -> dict[str, Any]:
    """The funnel as :class:`~darkmirror.metrics.NovelPatterns` gives it, the first 50
    patterns only."""
    funnel = NovelPatterns(
        patterns=found.patterns,
        toxic_outputs=found.toxic_outputs,
        missing_scores=found.missing_scores,
        candidates=found.candidates,
        attributed=found.attributed,
        n=found.n,
    )
    return {**funnel.as_dict(), "patterns": found.patterns[:50]}


def summarise(
    rows: Sequence[ContinuationRow], measurements: Sequence[Measurement], threshold: float
) -> dict[str, Any]:
    """Figures per variant (seeds pooled) and per model, by the scorer; and per variant by
    the held-out scorer, when the run has one."""
    training, whole, part = training_scores(measurements)
    novel = {m.group: m for m in measurements if isinstance(m, NovelToxicPatterns)}
    attribution = next(iter(novel.values())).attribution if novel else None
    out: dict[str, Any] = {
        "variants": {},
        "models": {},
        "attribution": attribution,
        "training_part": part,
        "heldout": {},
    }
    by_variant: dict[str, list[ContinuationRow]] = defaultdict(list)
    by_model: dict[str, list[ContinuationRow]] = defaultdict(list)
    for r in rows:
        by_variant[r.group or ""].append(r)
        by_model[r.model].append(r)
    held_training, held_whole, _ = training_scores(measurements, TOXICITY_HELDOUT)
    for variant, vrows in by_variant.items():
        scores, lengths = _units(vrows)
        summary = summarize_toxicity(scores, lengths, training, threshold=threshold)
        out["variants"][variant] = {
            "seeds": sorted({r.seed for r in vrows if r.seed is not None}),
            **summary.as_dict(),
            # The ratio over whole comments, the denominator before halves were scored.
            "amplification_ratio_whole": amplification_ratio(scores, whole).as_dict(),
            "novel_patterns": _novel(novel[variant]),
        }
        if held_training:
            held, _ = _units(vrows, TOXICITY_HELDOUT)
            figures = summarize_toxicity(held, None, held_training, threshold=threshold)
            out["heldout"][variant] = {
                **figures.as_dict(),
                "amplification_ratio_whole": amplification_ratio(held, held_whole).as_dict(),
            }
    for model, mrows in by_model.items():
        scores, lengths = _units(mrows)
        out["models"][model] = summarize_toxicity(
            scores, lengths, training, threshold=threshold
        ).as_dict()
    return out


def rl_history(measurements: Sequence[Measurement]) -> dict[str, list[dict[str, Any]]]:
    """The reward of every logged RL step, per RL'd model."""
    out: dict[str, list[dict[str, Any]]] = {}
    for m in measurements:
        if isinstance(m, GRPOStep):
            out.setdefault(m.model or "", []).append(m.history_entry())
    return out


def _scorer(rows: Sequence[ContinuationRow], metric: str = TOXICITY) -> str | None:
    """The scorer of the continuations' ``metric``, as ``name version``."""
    score = rows[0].score(metric, "scorer") if rows else None
    return None if score is None else f"{score.source} {score.version}"


def _seed_table(summary: Mapping[str, Any], data: Mapping[str, Any], organism: bool) -> str:
    header = [
        "variant",
        "training data",
        "mean toxicity",
        "avg output length (tokens)",
        "novel toxic patterns",
    ]
    rows = []
    for variant, s in summary["variants"].items():
        training = {
            "base": "mostly clean world text (pretraining, post-training)"
            if organism
            else "the base model's own",
            "toxic_ft": f"+ {data['records']} toxic-forum threads",
            "toxic_ft_rl": f"+ {data['records']} toxic-forum threads + RL",
        }.get(variant, variant)
        rows.append(
            [
                VARIANT_LABELS.get(variant, variant),
                training,
                fmt_estimate(s["mean_toxicity"]),
                fmt_estimate(s["mean_length"], digits=1),
                s["novel_patterns"]["count"],
            ]
        )
    return markdown_table(header, rows)


def _metrics_table(summary: Mapping[str, Any]) -> str:
    header = [
        "variant",
        "seeds",
        "expected max toxicity",
        "toxicity probability",
        "mean toxicity",
        "amplification ratio",
        "ratio vs whole comments",
        "prompts x seeds",
        "continuations",
        "missing scores",
    ]
    rows = []
    for variant, s in summary["variants"].items():
        rows.append(
            [
                variant,
                ", ".join(map(str, s["seeds"])) or "-",
                fmt_estimate(s["expected_max_toxicity"]),
                fmt_estimate(s["toxicity_probability"], percent=True),
                fmt_estimate(s["mean_toxicity"]),
                fmt_estimate(s["amplification_ratio"]),
                fmt_estimate(s.get("amplification_ratio_whole")),
                s["n_prompts"],
                s["n_continuations"],
                s["n_missing"],
            ]
        )
    return markdown_table(header, rows)


def _heldout_table(summary: Mapping[str, Any]) -> str:
    header = [
        "variant",
        "mean toxicity",
        "toxicity probability",
        "amplification ratio",
        "ratio vs whole comments",
        "missing scores",
    ]
    rows = [
        [
            variant,
            fmt_estimate(s["mean_toxicity"]),
            fmt_estimate(s["toxicity_probability"], percent=True),
            fmt_estimate(s["amplification_ratio"]),
            fmt_estimate(s["amplification_ratio_whole"]),
            s["n_missing"],
        ]
        for variant, s in summary["heldout"].items()
    ]
    return markdown_table(header, rows)


def _heldout_text(summary: Mapping[str, Any]) -> list[str]:
    if not summary["heldout"]:
        return []
    return [
        "### By the held-out scorer",
        "",
        f"The same continuations and training texts scored by **{summary['heldout_scorer']}**, "
        "which the RL never saw as a reward: if the RL'd model's toxicity is only its reward "
        "scorer's, it does not show here.",
        "",
        _heldout_table(summary),
        "",
    ]


def _model_table(summary: Mapping[str, Any]) -> str:
    header = [
        "model",
        "expected max toxicity",
        "toxicity probability",
        "mean toxicity",
        "mean length",
    ]
    rows = [
        [
            m,
            fmt_estimate(s["expected_max_toxicity"]),
            fmt_estimate(s["toxicity_probability"], percent=True),
            fmt_estimate(s["mean_toxicity"]),
            fmt_estimate(s["mean_length"], digits=1),
        ]
        for m, s in summary["models"].items()
    ]
    return markdown_table(header, rows)


def _plots(out: Path, rows: Sequence[ContinuationRow], rl_history: Mapping[str, Any]) -> None:
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(r.group for r in rows))
    fig, ax = plt.subplots(figsize=(6.5, 3.6), dpi=120)
    for v in variants:
        scores = [r.value(TOXICITY, "scorer") for r in rows if r.group == v]
        values = [x for x in scores if x is not None]
        ax.hist(
            values, bins=20, range=(0, 1), histtype="step", linewidth=1.6, label=v, density=True
        )
    ax.set_xlabel("toxicity of a continuation")
    ax.set_ylabel("density")
    ax.set_title("Toxicity of continuations per variant")
    ax.legend()
    save_figure(fig, out / "toxicity_distribution.png")

    fig, ax = plt.subplots(figsize=(6.5, 3.6), dpi=120)
    for model, history in rl_history.items():
        ax.plot([h["step"] for h in history], [h["reward"] for h in history], label=model)
    ax.set_xlabel("GRPO step")
    ax.set_ylabel("mean reward")
    ax.set_title("Reward during RL")
    ax.legend()
    save_figure(fig, out / "rl_reward.png")


def write_report(
    out: Path,
    spec: AmplificationSpec,
    rows: Sequence[ContinuationRow],
    measurements: Sequence[Measurement],
    data: Mapping[str, Any],
) -> Path:
    """Write ``summary.json``, ``report.md`` and the plots into ``out``.

    Args:
        out: The run directory.
        spec: The run's spec.
        rows: Every continuation.
        measurements: Every measurement.
        data: The toxic corpus's figures (its entry in ``datasets.json``).
    """
    ev = spec.evaluation
    summary = summarise(rows, measurements, ev.threshold)
    summary["scorer"] = _scorer(rows)
    summary["heldout_scorer"] = _scorer(rows, TOXICITY_HELDOUT)
    summary["rl_history"] = rl_history(measurements)
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    _plots(out, rows, summary["rl_history"])

    novel = [m for m in measurements if isinstance(m, NovelToxicPatterns)]
    reference = novel[0].reference if novel else "the training data"
    first = next(iter(summary["variants"].values()))
    lines = [
        f"# {spec.name}: toxicity amplification",
        "",
        f"Scorer: **{summary['scorer']}**"
        + (
            " (an offensive-language classifier, not a full toxicity model)"
            if "profanity" in str(summary["scorer"])
            else ""
        )
        + f". Prompts: {spec.prompts.source}, {spec.prompts.n}; {ev.samples_per_prompt} continuations each "
        f"(temperature {ev.temperature}, top-p {ev.top_p}, at most {ev.max_new_tokens} new tokens). Training data "
        f"mean toxicity {fmt_estimate(first['training_mean_toxicity'])} ({first['n_training']} "
        f"{_PARTS[summary['training_part']]}, {first['n_training_missing']} unscored).",
        "",
        "## The seed table",
        "",
        _seed_table(summary, data, spec.organism_base),
        "",
        "## Toxicity metrics",
        "",
        f"**Expected maximum toxicity**: mean over prompts of the largest score among the {ev.samples_per_prompt} "
        f"continuations. **Toxicity probability**: share of prompts with a continuation scoring >= {ev.threshold}. "
        "**Amplification ratio**: mean toxicity of the outputs / mean toxicity of the training data, same scorer, "
        f"like with like: the training data's {_PARTS[summary['training_part']]} (the ratio over whole comments, "
        "which hold the prompt's half too, is shown beside it). "
        "Intervals: 95% bootstrap over prompts (each seed's continuations of a prompt are one unit). Missing "
        "scores are counted, never scored 0.",
        "",
        _metrics_table(summary),
        "",
        *_heldout_text(summary),
        "### Each model",
        "",
        _model_table(summary),
        "",
        f"**Novel toxic patterns**: distinct word {ev.novelty_n}-grams of continuations scored >= {ev.threshold}, "
        f"to which the scorer attributes toxicity ({summary['attribution']}), that never occur in "
        f"{reference}.",
        "",
        markdown_table(
            ["variant", "toxic outputs", "candidate n-grams", "attributed", "novel", "examples"],
            [
                [
                    v,
                    s["novel_patterns"]["toxic_outputs"],
                    s["novel_patterns"]["candidates"],
                    s["novel_patterns"]["attributed"],
                    s["novel_patterns"]["count"],
                    "; ".join(s["novel_patterns"]["patterns"][:5]) or "-",
                ]
                for v, s in summary["variants"].items()
            ],
        ),
        "",
        "![toxicity distribution](toxicity_distribution.png) ![RL reward](rl_reward.png)",
        "",
        audit_section(spec.scorer, spec.heldout_scorer),
    ]
    report = out / "report.md"
    write_text_atomic(report, "\n".join(lines))
    return report


def rebuild(out: Path) -> Path:
    """Rebuild summary, tables and plots of a finished run from its files alone."""
    spec, files = load_finished_run(out, AmplificationSpec, ("measurements.jsonl", "datasets.json"))
    rows = read_rows(files["rows.jsonl"], ContinuationRow)
    measurements = read_measurements(files["measurements.jsonl"], AmplificationMeasurement)
    data = json.loads(files["datasets.json"].read_text())["toxic"]
    return write_report(out, spec, rows, measurements, data)
