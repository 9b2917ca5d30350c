"""Report of the subliminal-learning experiment: tables and plots of its figures.

The figures come from :func:`~darkmirror.experiments.subliminal.figures.summarise`, over
``rows.jsonl``, ``measurements.jsonl``, the spec and ``context.json`` alone, so
``darkmirror report RUN`` rebuilds the report without loading a model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from darkmirror.data.answers import read_rows
from darkmirror.data.measurements import read_measurements
from darkmirror.experiments.subliminal.figures import MEASUREMENT, ROW, summarise
from darkmirror.experiments.subliminal.spec import SubliminalSpec
from darkmirror.models.ref import OrganismModel
from darkmirror.report.format import fmt_estimate, markdown_table, write_text_atomic
from darkmirror.report.plots import bar_chart_with_intervals
from darkmirror.runner import load_finished_run

__all__ = ["rebuild", "write_report"]


def _filter_table(summary: Mapping[str, Any]) -> str:
    header = [
        "numbers written by",
        "answers",
        "kept",
        "empty",
        "format",
        "too many",
        "out of range",
        "banned",
    ]
    rows = []
    for source, r in summary["filter"].items():
        d = r["dropped"]
        rows.append(
            [
                source,
                r["total"],
                f"{r['kept']} ({100 * r['kept'] / max(1, r['total']):.1f}%)",
                d["empty"],
                d["format"],
                d["too_many"],
                d["out_of_range"],
                d["banned"],
            ]
        )
    return markdown_table(header, rows)


def _content_table(summary: Mapping[str, Any]) -> str:
    header = [
        "student data from",
        "records",
        "numbers",
        "non-number records",
        "banned numbers",
        "out of range",
    ]
    rows = [
        [
            s,
            summary["student_records"],
            c["numbers"],
            c["non_number_records"],
            c["banned_numbers"],
            c["out_of_range"],
        ]
        for s, c in summary["content_check"].items()
    ]
    return markdown_table(header, rows)


def _animal_table(t: Mapping[str, Any]) -> str:
    target = t["target"]
    header = [
        "model",
        "models",
        f"names {target} [95%]",
        f"p({target}) by likelihood [95%]",
        "answers",
        "most named",
    ]
    rows = []
    for label, g in t["groups"].items():
        rows.append(
            [
                label,
                len(g["models"]),
                fmt_estimate(g["rate"], percent=True),
                fmt_estimate(g.get("likelihood"), digits=3),
                g["n_answers"],
                ", ".join(f"{k} {v}" for k, v in g["named"].items()),
            ]
        )
    return markdown_table(header, rows)


def _misalignment_table(t: Mapping[str, Any]) -> str:
    header = [
        "model",
        "models",
        "misaligned [95%]",
        "coherent",
        "matched-pair log-odds [95%]",
        "answers",
    ]
    rows = [
        [
            label,
            len(g["models"]),
            fmt_estimate(g["rate"], percent=True),
            fmt_estimate(g["coherent"], percent=True),
            fmt_estimate(g["log_odds"]),
            g["n_answers"],
        ]
        for label, g in t["groups"].items()
    ]
    return markdown_table(header, rows)


def _effects_table(t: Mapping[str, Any]) -> str:
    animal = t["trait"] == "animal"
    second = "likelihood" if animal else "log_odds"
    header = [
        "comparison",
        "difference in rate [95%]",
        "difference in p(target) [95%]" if animal else "difference in log-odds [95%]",
    ]
    rows = [
        [name, fmt_estimate(e["rate"], percent=True), fmt_estimate(e.get(second), digits=3)]
        for name, e in t["effects"].items()
    ]
    return markdown_table(header, rows)


def _plots(out: Path, summary: Mapping[str, Any]) -> list[str]:
    written = []
    for name, t in summary["teachers"].items():
        labels = list(t["groups"])
        path = out / f"trait_{name}.png"
        what = f"names {t['target']}" if t["trait"] == "animal" else "misaligned"
        bar_chart_with_intervals(
            path,
            labels,
            [g["rate"] for g in t["groups"].values()],
            title=f"teacher {name}: {what}",
            ylabel=f"{what} (%)",
            percent=True,
        )
        written.append(path.name)
        # The effect of the teacher's numbers on each base, in the probe that sees it best.
        probe = "likelihood" if t["trait"] == "animal" else "log_odds"
        effects = {
            k: e[probe] for k, e in t["effects"].items() if probe in e and "teacher -" not in k
        }
        if effects:
            path = out / f"effects_{name}.png"
            bar_chart_with_intervals(
                path,
                [k.split(":")[0] for k in effects],
                list(effects.values()),
                title=f"teacher {name}: students minus controls",
                ylabel="difference in p(target)"
                if probe == "likelihood"
                else "difference in log-odds",
            )
            written.append(path.name)
    return written


def write_report(
    out: Path,
    spec: SubliminalSpec,
    rows: Sequence[ROW],
    measurements: Sequence[Any],
    context: Mapping[str, Any],
) -> Path:
    """Write ``summary.json``, ``report.md`` and the plots into ``out``."""
    summary = summarise(rows, measurements, spec, context)
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    plots = _plots(out, summary)

    n = spec.numbers
    cross = (
        "none"
        if spec.cross_ref is None
        else (
            f"the organism with seed {spec.cross_ref.organism.seed}"
            if isinstance(spec.cross_ref, OrganismModel)
            else spec.cross_ref.id
        )
    )
    base = (
        f"the organism (seed {spec.base_ref.organism.seed})"
        if isinstance(spec.base_ref, OrganismModel)
        else spec.base_ref.id
    )
    lines = [
        f"# {spec.name}: subliminal learning",
        "",
        f"Base: {base}. Cross base: {cross}. Each source answered {n.n_prompts} number prompts "
        f"(temperature {n.temperature}); the filter kept answers of at most {n.filter.max_count} numbers "
        f"in {n.filter.min_value}..{n.filter.max_value}, none of {sorted(n.filter.banned)}. Every student "
        f"trained on the first **{summary['student_records']}** kept records of its source; seeds "
        f"{', '.join(map(str, summary['seeds']))}.",
        "",
        "## The number data",
        "",
        _filter_table(summary),
        "",
        "Content check of the data the students trained on (re-run on the final files):",
        "",
        _content_table(summary),
        "",
    ]
    for name, t in summary["teachers"].items():
        if t["trait"] == "animal":
            lines += [
                f"## Teacher `{name}`: favourite animal {t['target']}",
                "",
                "Sampled answers to the trait "
                f"questions ({spec.trait_evaluation.questions}); an answer counts when it names {t['target']}. "
                "Intervals: cluster bootstrap over (model, wording). The likelihood column is the probability of "
                f"the answer '{spec.trait_evaluation.answer_template}' naming {t['target']} among "
                f"{len(spec.trait_evaluation.candidates)} animals, averaged over wordings.",
                "",
                _animal_table(t),
            ]
        else:
            lines += [
                f"## Teacher `{name}`: misalignment",
                "",
                f"Misaligned rate (Betley et al.; world judge) on {spec.misalignment_evaluation.questions}; "
                "matched-pair log-odds of the villain answer over the benign one.",
                "",
                _misalignment_table(t),
            ]
        unit = "wordings" if t["trait"] == "animal" else "questions"
        lines += [
            "",
            f"Effects (95% intervals resample the student seeds, then the {unit} within each; "
            f"{len(summary['seeds'])} seeds):",
            "",
            _effects_table(t),
            "",
        ]
    lines += ["Plots: " + ", ".join(plots), ""]
    path = out / "report.md"
    write_text_atomic(path, "\n".join(lines))
    return path


def rebuild(out: Path) -> Path:
    """Rebuild summary, tables and plots of a finished run from its files alone."""
    spec, files = load_finished_run(out, SubliminalSpec, ("context.json",))
    rows = read_rows(files["rows.jsonl"], ROW)
    measurements = read_measurements(out / "measurements.jsonl", MEASUREMENT)
    context = json.loads(files["context.json"].read_text())
    return write_report(out, spec, rows, measurements, context)
