"""The persona report's plots, from the figures of :func:`~.figures.summarise`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from darkmirror.experiments.persona.names import FOUND, SHORT, TRUTH
from darkmirror.report.plots import bar_chart_with_intervals, save_figure

__all__ = ["write_plots"]


def _errorbars(estimates: Sequence[Mapping[str, Any] | None], scale: float = 1.0):
    values, lo, hi = [], [], []
    for e in estimates:
        v = None if not e else e.get("value")
        if v is None:
            values.append(math.nan)
            lo.append(0.0)
            hi.append(0.0)
            continue
        values.append(v * scale)
        lo.append(0.0 if e.get("lo") is None else max(0.0, (v - e["lo"]) * scale))
        hi.append(0.0 if e.get("hi") is None else max(0.0, (e["hi"] - v) * scale))
    return values, [lo, hi]


_REFERENCE_STYLES = ("--", ":", "-.")


def _curves(
    path: Path,
    x: Sequence[float],
    panels: Sequence[tuple[str, Mapping[str, Sequence[Mapping[str, Any] | None]], float]],
    *,
    title: str,
    xlabel: str,
    xticks: Sequence[str] | None = None,
    references: Mapping[str, Sequence[float]] | None = None,
) -> None:
    """One panel per (ylabel, series, scale); each series a line with 95% error bars."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels) + 2.4, 3.6), dpi=120)
    axes = np.atleast_1d(axes)
    for p, (ax, (ylabel, series, scale)) in enumerate(zip(axes, panels, strict=True)):
        for label, estimates in series.items():
            values, err = _errorbars(estimates, scale)
            ax.errorbar(x, values, yerr=err, marker="o", capsize=3, label=label)
        for (label, values), style in zip(
            (references or {}).items(), _REFERENCE_STYLES, strict=False
        ):
            ax.axhline(values[p], linewidth=1.0, color="grey", linestyle=style, label=label)
        ax.set_xticks(list(x), list(xticks) if xticks is not None else [f"{v:g}" for v in x])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    # One legend, outside the panels: the series are the same in every panel.
    axes[-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.suptitle(title)
    save_figure(fig, path)


def _pooled(estimates: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean of per-seed values, with bars from the lowest to the highest bound."""
    values = [e["value"] for e in estimates if e.get("value") is not None]
    los = [e["lo"] for e in estimates if e.get("lo") is not None]
    his = [e["hi"] for e in estimates if e.get("hi") is not None]
    return {
        "value": float(np.mean(values)) if values else None,
        "lo": min(los, default=None),
        "hi": max(his, default=None),
    }


def write_plots(out: Path, summary: Mapping[str, Any], names: Mapping[str, str]) -> list[str]:
    written = []
    directions = summary["directions"]
    if summary["probe"] and directions:
        layers = sorted(int(k) for k in next(iter(directions.values())))
        panels = [
            (
                f"cosine with the {SHORT[t]}",
                {
                    SHORT[name]: [
                        {"value": directions[name][str(layer)]["cosine"][t]} for layer in layers
                    ]
                    for name in (*FOUND, "random")
                    if name in directions
                },
                1.0,
            )
            for t in TRUTH
        ]
        chance = summary["chance_cosine"]
        path = out / "cosine_with_probe.png"
        _curves(
            path,
            layers,
            panels,
            title="found directions vs the ground truth (mean of seeds)",
            xlabel="layer (output of block)",
            references={f"chance (|cos| < {chance:.2f})": [chance, chance]},
        )
        written.append(path.name)
    if summary["auroc"]:
        aurocs = list(summary["auroc"].values())
        layers = list(range(len(aurocs[0]["mean_difference"])))
        # Mean of the seeds; the bars span the seeds' intervals (or the random draws' range).
        series = {
            SHORT[name]: [_pooled([a[name][i] for a in aurocs]) for i in layers]
            for name in (*FOUND, *TRUTH, "random")
            if name in aurocs[0]
        }
        path = out / "auroc.png"
        _curves(
            path,
            layers,
            [("AUROC on held-out answers", series, 1.0)],
            title="the projection as a detector of misaligned answers",
            xlabel="layer (output of block)",
        )
        written.append(path.name)
    neutral = summary["neutral"]
    if neutral:
        at = neutral["layers"][str(neutral["layer"])]
        path = out / "neutral_projection.png"
        groups = [g for g in ("base", "control", "misaligned") if g in at]
        bar_chart_with_intervals(
            path,
            [names.get(g, g) for g in groups],
            [at[g] for g in groups],
            title=f"neutral prompts: mean projection at layer {neutral['layer']}",
            ylabel="projection on the direction",
        )
        written.append(path.name)
    steering = summary["steering"]
    alphas = [p["alpha"] for p in steering["persona"]]
    path = out / "steering.png"
    _curves(
        path,
        alphas,
        [
            (
                "misaligned (%)",
                {k: [p.get("rate") for p in steering[k]] for k in ("persona", "random")},
                100.0,
            ),
            (
                "coherent (%)",
                {k: [p.get("coherent") for p in steering[k]] for k in ("persona", "random")},
                100.0,
            ),
            (
                "villain log-odds (nats)",
                {k: [p.get("log_odds") for p in steering[k]] for k in ("persona", "random")},
                1.0,
            ),
        ],
        title=f"steering the base at layer {summary['layer']}",
        xlabel="a (multiple of the direction)",
    )
    written.append(path.name)
    for group, g in summary["ablation"].items():
        path = out / f"ablation_{group}.png"
        conditions = ("none", "persona", "random")
        bar_chart_with_intervals(
            path,
            ["nothing", "persona direction", "random directions"],
            [g[c]["rate"] for c in conditions],
            title=f"ablation in {names.get(group, group)}",
            ylabel="misaligned (%)",
            percent=True,
        )
        written.append(path.name)
    realign = summary["realign"]
    ns = [p["n"] for p in realign["curve"]]
    refs = {
        names.get(group, group): [
            100.0 * (g["rate"]["value"] or 0.0) if g["rate"]["value"] is not None else math.nan,
            g["log_odds"]["value"] if g["log_odds"]["value"] is not None else math.nan,
        ]
        for group, g in realign["references"].items()
    }
    path = out / "realignment.png"
    _curves(
        path,
        list(range(len(ns))),
        [
            ("misaligned (%)", {"re-aligned": [p["rate"] for p in realign["curve"]]}, 100.0),
            (
                "villain log-odds (nats)",
                {"re-aligned": [p["log_odds"] for p in realign["curve"]]},
                1.0,
            ),
        ],
        title=f"re-alignment on benign {realign['domain'] or 'examples'}",
        xlabel="benign examples N",
        xticks=[str(n) for n in ns],
        references=refs,
    )
    written.append(path.name)
    return written
