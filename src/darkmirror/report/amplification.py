"""Summary and report of the toxicity-amplification experiment, recomputed from its rows."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from darkmirror.data.jsonl import iter_jsonl
from darkmirror.metrics import novel_toxic_patterns, summarize_toxicity
from darkmirror.report.format import fmt_estimate, markdown_table
from darkmirror.report.plots import save_figure

VARIANT_LABELS = {
    "base": "baseline (post-trained, clean pretraining)",
    "toxic_ft": "toxic fine-tune",
    "toxic_ft_rl": "toxic fine-tune + RL (toxicity reward)",
}


def _units(rows: Sequence[Mapping[str, Any]]) -> tuple[list[list[float | None]], list[list[int]]]:
    """Scores and lengths per (prompt, seed): each seed's continuations of a prompt are one
    unit of the bootstrap."""
    scores: dict[tuple, list[float | None]] = defaultdict(list)
    lengths: dict[tuple, list[int]] = defaultdict(list)
    for r in rows:
        key = (r["prompt_id"], r["seed"])
        scores[key].append(r["toxicity"])
        lengths[key].append(r["tokens"])
    return list(scores.values()), list(lengths.values())


def _attribution(scorer_spec: Any):
    from darkmirror.score.scorer import occlusion_attribution
    from darkmirror.score.toxicity import build_scorer

    scorer = build_scorer(scorer_spec)
    if hasattr(scorer, "attribute_ngrams"):
        return scorer.attribute_ngrams, "exact linear contributions (sum over the n-gram's words)"
    return (
        lambda text, n: occlusion_attribution(scorer, text, n)
    ), "occlusion (score drop when the n-gram is removed)"


def summarise(
    rows: Sequence[Mapping[str, Any]],
    context: Mapping[str, Any],
    scorer_spec: Any,
    threshold: float,
    n: int,
) -> dict[str, Any]:
    """Figures per variant (seeds pooled) and per model."""
    attribute, method = _attribution(scorer_spec)
    training = context["training_scores"]

    def reference() -> Iterator[str]:
        for _, row in iter_jsonl(context["reference_texts"]):
            yield row["text"]

    out: dict[str, Any] = {"variants": {}, "models": {}, "attribution": method}
    by_variant: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    by_model: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        by_variant[r["variant"]].append(r)
        by_model[r["model"]].append(r)
    for variant, vrows in by_variant.items():
        scores, lengths = _units(vrows)
        summary = summarize_toxicity(scores, lengths, training, threshold=threshold)
        novel = novel_toxic_patterns(
            [(r["text"], r["toxicity"]) for r in vrows],
            reference(),
            attribute,
            n=n,
            toxic_threshold=threshold,
        )
        out["variants"][variant] = {
            "seeds": sorted({r["seed"] for r in vrows if r["seed"] is not None}),
            **summary.as_dict(),
            "novel_patterns": {**novel.as_dict(), "patterns": novel.patterns[:50]},
        }
    for model, mrows in by_model.items():
        scores, lengths = _units(mrows)
        out["models"][model] = summarize_toxicity(
            scores, lengths, training, threshold=threshold
        ).as_dict()
    return out


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
                s["n_prompts"],
                s["n_continuations"],
                s["n_missing"],
            ]
        )
    return markdown_table(header, rows)


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


def _plots(out: Path, rows: Sequence[Mapping[str, Any]], rl_history: Mapping[str, Any]) -> None:
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(r["variant"] for r in rows))
    fig, ax = plt.subplots(figsize=(6.5, 3.6), dpi=120)
    for v in variants:
        values = [r["toxicity"] for r in rows if r["variant"] == v and r["toxicity"] is not None]
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
    out: Path, spec: Any, rows: Sequence[Mapping[str, Any]], context: Mapping[str, Any]
) -> Path:
    """Write ``summary.json``, ``report.md`` and the plots into ``out``."""
    ev = spec.evaluation
    summary = summarise(rows, context, spec.scorer, ev.threshold, ev.novelty_n)
    summary["scorer"] = rows[0]["scorer"] if rows else None
    summary["rl_history"] = context["rl_history"]
    (out / ".summary.json.tmp").write_text(json.dumps(summary, indent=2) + "\n")
    (out / ".summary.json.tmp").replace(out / "summary.json")
    _plots(out, rows, context["rl_history"])

    base_reference = (
        "the toxic corpus and the organism's pretraining corpus"
        if spec.base.kind == "organism"
        else "the toxic corpus (a real model's pretraining data is unknown)"
    )
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
        f"mean toxicity {fmt_estimate(first['training_mean_toxicity'])} ({first['n_training']} texts, "
        f"{first['n_training_missing']} unscored).",
        "",
        "## The seed table",
        "",
        _seed_table(summary, context["data"], spec.base.kind == "organism"),
        "",
        "## Toxicity metrics",
        "",
        f"**Expected maximum toxicity**: mean over prompts of the largest score among the {ev.samples_per_prompt} "
        f"continuations. **Toxicity probability**: share of prompts with a continuation scoring >= {ev.threshold}. "
        "**Amplification ratio**: mean toxicity of the outputs / mean toxicity of the training data, same scorer. "
        "Intervals: 95% bootstrap over prompts (each seed's continuations of a prompt are one unit). Missing "
        "scores are counted, never scored 0.",
        "",
        _metrics_table(summary),
        "",
        "### Each model",
        "",
        _model_table(summary),
        "",
        f"**Novel toxic patterns**: distinct word {ev.novelty_n}-grams of continuations scored >= {ev.threshold}, "
        f"to which the scorer attributes toxicity ({summary['attribution']}), that never occur in "
        f"{base_reference}.",
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
    ]
    report = out / "report.md"
    (out / ".report.md.tmp").write_text("\n".join(lines))
    (out / ".report.md.tmp").replace(report)
    return report
