"""The persona report's tables, from the figures of :func:`~.figures.summarise`."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from darkmirror.experiments.persona.names import FOUND, LABELS, TRUTH
from darkmirror.report.format import fmt_estimate, markdown_table

__all__ = [
    "ablation_table",
    "auroc_table",
    "cosine_table",
    "models_table",
    "neutral_table",
    "probe_table",
    "realign_table",
    "specificity_table",
    "steering_table",
]


def models_table(models: Mapping[str, Any], names: Mapping[str, str]) -> str:
    header = ["model", "misaligned [95%]", "coherent", "matched-pair log-odds [95%]", "answers"]
    rows = [
        [
            names.get(group, group),
            fmt_estimate(g["rate"], percent=True),
            fmt_estimate(g["coherent"], percent=True),
            fmt_estimate(g["log_odds"]),
            g["answers"],
        ]
        for group, g in models.items()
    ]
    return markdown_table(header, rows)


def _per_seed(values: Mapping[str, Any], key: Callable[[Any], float]) -> str:
    return " / ".join(f"{key(v):+.2f}" for _, v in sorted(values.items()))


def probe_table(summary: Mapping[str, Any]) -> str:
    probe = summary["probe"]
    header = ["", *[f"layer {p['layer']}" for p in probe]]
    rows = [
        [
            "held-out accuracy [95%]",
            *[fmt_estimate(p["test_accuracy"], percent=True) for p in probe],
        ],
        ["training accuracy", *[f"{100 * p['train_accuracy']:.1f}%" for p in probe]],
    ]
    return markdown_table(header, rows)


def cosine_table(summary: Mapping[str, Any]) -> str:
    """Rows: (direction, what it is compared with); columns: layers; cells: per seed."""
    directions = summary["directions"]
    if not directions:
        return "(no direction)"
    layers = sorted(next(iter(directions.values())), key=int)
    header = ["direction", "compared with", *[f"layer {i}" for i in layers]]
    rows = []
    for name in (*FOUND, "random"):
        if name not in directions:
            continue
        versus = list(directions[name][layers[0]]["cosine"])
        for t in [*[t for t in TRUTH if t in versus], "mean_difference"]:
            if t == name or t not in versus:
                continue
            cells = [
                _per_seed(directions[name][i]["seeds"], lambda s, t=t: s["cosine"][t])
                for i in layers
            ]
            rows.append([LABELS[name], LABELS[t], *cells])
    return markdown_table(header, rows)


def auroc_table(summary: Mapping[str, Any]) -> str:
    aurocs = summary["auroc"]
    if not aurocs:
        return "(no held-out answer had a label)"
    any_seed = next(iter(aurocs.values()))
    names = [n for n in (*FOUND, *TRUTH, "random") if n in any_seed]
    n_layers = len(any_seed[names[0]]) if names else 0
    header = ["direction", "seed", "misaligned / aligned", *[f"layer {i}" for i in range(n_layers)]]
    rows = []
    for name in names:
        for seed, per_seed in aurocs.items():
            rows.append(
                [
                    LABELS[name],
                    seed,
                    f"{per_seed['misaligned']} / {per_seed['aligned']}",
                    *[fmt_estimate(e) for e in per_seed[name]],
                ]
            )
    return markdown_table(header, rows)


def neutral_table(neutral: Mapping[str, Any]) -> str:
    layers = sorted(neutral["layers"], key=int)
    keys = list(neutral["layers"][layers[0]])
    header = ["model (or difference)", *[f"layer {i}" for i in layers]]
    rows = [[k, *[fmt_estimate(neutral["layers"][i][k]) for i in layers]] for k in keys]
    return markdown_table(header, rows)


def steering_table(steering: Mapping[str, Any]) -> str:
    header = [
        "a",
        "persona: misaligned",
        "coherent",
        "log-odds",
        "random: misaligned",
        "coherent",
        "log-odds",
        "persona - random: log-odds [95%]",
    ]
    rows = []
    for p, q, d in zip(
        steering["persona"], steering["random"], steering["persona - random"], strict=True
    ):
        rows.append(
            [
                f"{p['alpha']:g}",
                fmt_estimate(p.get("rate"), percent=True),
                fmt_estimate(p.get("coherent"), percent=True),
                fmt_estimate(p.get("log_odds")),
                fmt_estimate(q.get("rate"), percent=True),
                fmt_estimate(q.get("coherent"), percent=True),
                fmt_estimate(q.get("log_odds")),
                fmt_estimate(d["log_odds"]) if d else "n/a",
            ]
        )
    return markdown_table(header, rows)


def _relative(x: float | None) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{100 * x:+.0f}%"


def ablation_table(ablation: Mapping[str, Any], names: Mapping[str, str]) -> str:
    header = [
        "model",
        "ablated",
        "misaligned [95%]",
        "coherent",
        "log-odds [95%]",
        "change in misaligned [95%]",
        "relative change",
        "change in log-odds [95%]",
    ]
    rows = []
    for group, g in ablation.items():
        for condition in ("none", "persona", "random"):
            change = g.get(f"{condition} - none")
            rows.append(
                [
                    names.get(group, group),
                    {
                        "none": "nothing",
                        "persona": "persona direction",
                        "random": "random directions",
                    }[condition],
                    fmt_estimate(g[condition]["rate"], percent=True),
                    fmt_estimate(g[condition]["coherent"], percent=True),
                    fmt_estimate(g[condition]["log_odds"]),
                    fmt_estimate(change["rate"], percent=True) if change else "",
                    _relative(change["relative_rate"]) if change else "",
                    fmt_estimate(change["log_odds"]) if change else "",
                ]
            )
    return markdown_table(header, rows)


def realign_table(realign: Mapping[str, Any], names: Mapping[str, str]) -> str:
    header = ["benign examples N", "misaligned [95%]", "coherent", "log-odds [95%]", "answers"]
    rows = [
        [
            str(p["n"]),
            fmt_estimate(p["rate"], percent=True),
            fmt_estimate(p["coherent"], percent=True),
            fmt_estimate(p["log_odds"]),
            p["answers"],
        ]
        for p in realign["curve"]
    ]
    for group, g in realign["references"].items():
        rows.append(
            [
                f"({names.get(group, group)})",
                fmt_estimate(g["rate"], percent=True),
                fmt_estimate(g["coherent"], percent=True),
                fmt_estimate(g["log_odds"]),
                g["answers"],
            ]
        )
    return markdown_table(header, rows)


_FIGURES = {"misaligned": "misaligned rate", "log_odds": "matched-pair log-odds",
            "coherent": "coherent share"}  # fmt: skip


def specificity_table(specificity: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """The persona ablation's change in each model and its difference in differences."""
    header = [
        "questions",
        "figure",
        f"change in {names.get('misaligned', 'misaligned')} [95%]",
        f"change in {names.get('control', 'control')} [95%]",
        "difference in differences [95%]",
    ]
    rows = []
    for subset, label in (("heldout", "held out"), ("all", "all")):
        for figure, g in specificity.get(subset, {}).items():
            percent = figure != "log_odds"
            rows.append(
                [
                    label,
                    _FIGURES[figure],
                    *[
                        fmt_estimate(g[k], percent=percent)
                        for k in ("misaligned", "control", "net")
                    ],
                ]
            )
    return markdown_table(header, rows) if rows else "(no ablation of the control)"
