"""Summary and report of the subliminal-learning MLP experiment, from its measurements.

Every figure is computed from the networks' :class:`~.cell.NetworkAccuracy` measurements
(``measurements.jsonl``) and the spec, so ``darkmirror report RUN`` rebuilds the report from
the run's files alone.

Every accuracy is the mean over seeds with a 95% Student's t interval over seeds (a
percentile bootstrap over 5 seeds under-covers); the same-minus-cross difference is paired by seed (both students of a seed distil the same
teacher on the same noise). ``summary.json`` also pools each network's test predictions
over seeds with a Wilson interval, which ignores seed-to-seed variation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from darkmirror.data.measurements import read_measurements
from darkmirror.experiments.subliminal_mlp.cell import MODEL_KINDS, NetworkAccuracy
from darkmirror.experiments.subliminal_mlp.spec import SubliminalMLPSpec
from darkmirror.experiments.subliminal_mlp.training import N_CLASSES
from darkmirror.metrics import t_mean, wilson_rate
from darkmirror.report.format import fmt_estimate, markdown_table, write_text_atomic
from darkmirror.report.plots import save_figure
from darkmirror.runner import load_finished_run

__all__ = ["rebuild", "summarise", "write_report"]

LABELS = {
    "teacher": "teacher",
    "initial": "initial network (untrained)",
    "student_same_init": "student, same init",
    "student_cross_init": "student, cross init",
}
CHANCE = 1 / N_CLASSES
PUBLISHED = {
    "source": "Cloud et al. 2025, Subliminal learning (MNIST, MLP 784-256-256-(10+3))",
    "m": 3,
    "student_same_init": 0.54,
    "student_cross_init": 0.10,
}


Cell = Mapping[int, NetworkAccuracy]
"""One network of every seed at one m, by seed."""


def _by_seed(rows: Sequence[NetworkAccuracy], m: int, kind: str) -> dict[int, NetworkAccuracy]:
    return {r.seed: r for r in rows if r.m == m and r.model == kind}


def _network_summary(cell: Cell) -> dict[str, Any]:
    seeds = sorted(cell)
    summary: dict[str, Any] = {
        "accuracy": t_mean([cell[s].accuracy for s in seeds]).as_dict(),
        "pooled": wilson_rate(
            sum(cell[s].correct for s in seeds), sum(cell[s].n_test for s in seeds)
        ).as_dict(),
        "per_seed": {str(s): cell[s].accuracy for s in seeds},
    }
    # Only the students are measured on held-out noise.
    for key in ("heldout_loss_before", "heldout_loss_after"):
        if seeds and getattr(cell[seeds[0]], key) is not None:
            summary[key] = t_mean([getattr(cell[s], key) for s in seeds]).as_dict()
    return summary


def summarise(rows: Sequence[NetworkAccuracy], m_values: Sequence[int]) -> dict[str, Any]:
    """Figures per m: each network's accuracy and the paired same-minus-cross difference."""
    per_m: dict[str, Any] = {}
    for m in m_values:
        cells = {kind: _by_seed(rows, m, kind) for kind in MODEL_KINDS}
        entry = {kind: _network_summary(cell) for kind, cell in cells.items()}
        same, cross = cells["student_same_init"], cells["student_cross_init"]
        paired = sorted(set(same) & set(cross))
        entry["same_minus_cross"] = t_mean(
            [same[s].accuracy - cross[s].accuracy for s in paired]
        ).as_dict()
        per_m[str(m)] = entry
    return {
        "m_values": list(m_values),
        "seeds": sorted({r.seed for r in rows}),
        "n_test": rows[0].n_test if rows else 0,
        "chance": CHANCE,
        "published": PUBLISHED,
        "per_m": per_m,
    }


def _accuracy_table(summary: Mapping[str, Any]) -> str:
    header = [
        "m",
        "student, same init",
        "student, cross init",
        "same - cross (paired)",
        "teacher",
        "initial network",
    ]
    rows = [
        [
            m,
            fmt_estimate(e["student_same_init"]["accuracy"]),
            fmt_estimate(e["student_cross_init"]["accuracy"]),
            fmt_estimate(e["same_minus_cross"]),
            fmt_estimate(e["teacher"]["accuracy"]),
            fmt_estimate(e["initial"]["accuracy"]),
        ]
        for m, e in summary["per_m"].items()
    ]
    return markdown_table(header, rows)


def _fit_table(summary: Mapping[str, Any]) -> str:
    header = [
        "m",
        "same init: before",
        "same init: after",
        "cross init: before",
        "cross init: after",
    ]
    rows = []
    for m, e in summary["per_m"].items():
        same, cross = e["student_same_init"], e["student_cross_init"]
        rows.append(
            [
                m,
                fmt_estimate(same.get("heldout_loss_before"), digits=4),
                fmt_estimate(same.get("heldout_loss_after"), digits=4),
                fmt_estimate(cross.get("heldout_loss_before"), digits=4),
                fmt_estimate(cross.get("heldout_loss_after"), digits=4),
            ]
        )
    return markdown_table(header, rows)


def _seed_table(summary: Mapping[str, Any]) -> str:
    seeds = summary["seeds"]
    rows = [
        [m, LABELS[kind], *(f"{e[kind]['per_seed'].get(str(s), float('nan')):.3f}" for s in seeds)]
        for m, e in summary["per_m"].items()
        for kind in MODEL_KINDS
    ]
    return markdown_table(["m", "network", *(f"seed {s}" for s in seeds)], rows)


def _errorbar(ax, xs: list[int], estimates: list[Mapping[str, Any]], **style: Any) -> None:
    values = [e["value"] for e in estimates]
    lo = [e["value"] - e["lo"] if e["lo"] is not None else 0.0 for e in estimates]
    hi = [e["hi"] - e["value"] if e["hi"] is not None else 0.0 for e in estimates]
    ax.errorbar(xs, values, yerr=[lo, hi], capsize=4, marker="o", **style)


def _plots(out: Path, summary: Mapping[str, Any]) -> None:
    import matplotlib.pyplot as plt

    ms = [int(m) for m in summary["per_m"]]
    entries = list(summary["per_m"].values())
    fig, ax = plt.subplots(figsize=(6.5, 4.0), dpi=120)
    for kind, color in (("student_same_init", "#c44e52"), ("student_cross_init", "#4c72b0")):
        _errorbar(ax, ms, [e[kind]["accuracy"] for e in entries], color=color, label=LABELS[kind])
    ax.plot(ms, [e["teacher"]["accuracy"]["value"] for e in entries], "k--", label="teacher")
    ax.plot(
        ms, [e["initial"]["accuracy"]["value"] for e in entries], ":", color="gray", label="initial"
    )
    ax.axhline(CHANCE, color="gray", linewidth=0.8, label="chance (0.1)")
    for kind, color in (("student_same_init", "#c44e52"), ("student_cross_init", "#4c72b0")):
        ax.plot(PUBLISHED["m"], PUBLISHED[kind], "*", color=color, markersize=11, alpha=0.6, mew=0)
    ax.plot([], [], "*", color="gray", markersize=11, label="published, MNIST (m = 3)")
    ax.set_xscale("log")
    ax.set_xticks(ms, [str(m) for m in ms])
    ax.minorticks_off()
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("auxiliary logits m")
    ax.set_ylabel("test accuracy (regular logits)")
    ax.set_title("Students distilled on noise through auxiliary logits only")
    ax.grid(alpha=0.3)
    # Below the teacher line, left of the rising same-init curve: the empty corner.
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.0, 0.93), ncol=2)
    save_figure(fig, out / "accuracy_vs_m.png")

    fig, ax = plt.subplots(figsize=(6.5, 3.4), dpi=120)
    _errorbar(ax, ms, [e["same_minus_cross"] for e in entries], color="#55a868")
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_xscale("log")
    ax.set_xticks(ms, [str(m) for m in ms])
    ax.minorticks_off()
    ax.set_xlabel("auxiliary logits m")
    ax.set_ylabel("accuracy: same - cross init")
    ax.set_title("Paired difference (same teacher, same noise)")
    ax.grid(alpha=0.3)
    save_figure(fig, out / "same_minus_cross.png")


def _setup(spec: SubliminalMLPSpec, summary: Mapping[str, Any]) -> str:
    t, s = spec.teacher, spec.student
    widths = "-".join(str(w) for w in spec.hidden_sizes)
    loss = (
        "KL(teacher || student) between the softmaxes over the auxiliary logits (as in the paper's code)"
        if s.loss == "kl"
        else "mean squared error on the raw auxiliary logits"
    )
    return (
        f"Data: scikit-learn's 8x8 digits, pixels scaled to [-1, 1], stratified split (seed "
        f"{spec.split_seed}) with {summary['n_test']} test images. Network: MLP 64-{widths}-(10+m), "
        f"ReLU. Teacher: cross-entropy on the 10 regular logits only, Adam (lr {t.learning_rate}, "
        f"batch {t.batch_size}, {t.epochs} epochs). Students: {loss}, on {s.noise_inputs} inputs of "
        f"uniform noise in [{s.noise_low}, {s.noise_high}], Adam (lr {s.learning_rate}, batch "
        f"{s.batch_size}, {s.epochs} epochs); the same-init student starts from the teacher's initial "
        "weights, the cross-init student from a fresh random initialisation. Accuracy is the argmax of "
        f"the 10 regular logits, which no student is trained on. Seeds: "
        f"{', '.join(map(str, summary['seeds']))} (each: its own initialisations, noise and batch order)."
    )


def write_report(
    out: Path, spec: SubliminalMLPSpec, measurements: Sequence[NetworkAccuracy]
) -> Path:
    """Write ``summary.json``, ``report.md`` and the plots into ``out``."""
    summary = summarise(measurements, spec.m_values)
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    _plots(out, summary)

    lines = [
        f"# {spec.name}: subliminal learning in an MLP",
        "",
        _setup(spec, summary),
        "",
        "## Test accuracy by number of auxiliary logits",
        "",
        "Mean over seeds [95% Student's t interval over seeds]. The difference is paired by seed. "
        f"Chance is {CHANCE:.2f}.",
        "",
        _accuracy_table(summary),
        "",
        f"Published ({PUBLISHED['source']}): same-init student {PUBLISHED['student_same_init']:.2f}, "
        f"cross-init student {PUBLISHED['student_cross_init']:.2f} (chance) at m = "
        f"{PUBLISHED['m']}; accuracy grows with m.",
        "",
        "![accuracy vs m](accuracy_vs_m.png) ![same minus cross](same_minus_cross.png)",
        "",
        "## Do the students fit the auxiliary logits?",
        "",
        f"Distillation loss ({spec.student.loss}) on {spec.student.heldout_noise} held-out noise "
        "inputs, before and after distillation (mean over seeds). When both fall, both students "
        "learnt the teacher's auxiliary logits, and a gap in accuracy comes from where they started, "
        "not from one failing to fit.",
        "",
        _fit_table(summary),
        "",
        "## Each seed",
        "",
        _seed_table(summary),
        "",
    ]
    report = out / "report.md"
    write_text_atomic(report, "\n".join(lines))
    return report


def rebuild(out: Path) -> Path:
    """Rebuild summary, tables and plots of a finished run from its files alone."""
    spec, files = load_finished_run(out, SubliminalMLPSpec, ("measurements.jsonl",))
    return write_report(out, spec, read_measurements(files["measurements.jsonl"], NetworkAccuracy))
