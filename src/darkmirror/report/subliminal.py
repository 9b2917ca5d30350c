"""Summary and report of the subliminal-learning experiment, recomputed from its rows."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from darkmirror.metrics import (
    bootstrap_difference,
    mean_with_ci,
    misaligned_rate,
    rate_with_ci,
)
from darkmirror.report.format import fmt_estimate, markdown_table
from darkmirror.report.plots import bar_chart_with_intervals
from darkmirror.score.traits import names_animal

# The rows of each teacher's table: (label, role, base, belongs to the teacher?).
ROLES: tuple[tuple[str, str, str, bool], ...] = (
    ("base", "base", "base", False),
    ("teacher", "teacher", "base", True),
    ("control: base numbers", "control", "base", False),
    ("student: teacher numbers", "student", "base", True),
    ("cross base", "base", "cross", False),
    ("cross control: base numbers", "cross_control", "cross", False),
    ("cross student: teacher numbers", "cross_student", "cross", True),
)
# The comparisons each effect is: (name, treated role label, control role label).
EFFECTS: tuple[tuple[str, str, str], ...] = (
    ("same base: student - control", "student: teacher numbers", "control: base numbers"),
    (
        "cross base: cross student - cross control",
        "cross student: teacher numbers",
        "cross control: base numbers",
    ),
    ("teacher - base", "teacher", "base"),
)


def _select(
    rows: Sequence[Mapping[str, Any]], teacher: Mapping[str, Any], role: tuple, kind: str
) -> list[Mapping[str, Any]]:
    _, r, base, own = role
    return [
        row
        for row in rows
        if row["trait"] == teacher["trait"]
        and row["kind"] == kind
        and row["role"] == r
        and row["base"] == base
        and (row["teacher"] == teacher["name"] if own else row["teacher"] is None)
    ]


def _animal_figures(rows: Sequence[Mapping[str, Any]], target: str) -> dict[str, Any]:
    hits = [names_animal(r["answer"], target) for r in rows]
    clusters = [(r["model"], r["paraphrase_index"]) for r in rows]
    named = Counter(r["named"] or "(none)" for r in rows)
    return {
        "hits": hits,
        "clusters": clusters,
        "rate": rate_with_ci(hits, clusters).as_dict(),
        "named": dict(named.most_common(5)),
        "n_answers": len(rows),
        "models": sorted({r["model"] for r in rows}),
    }


def _likelihood_figures(rows: Sequence[Mapping[str, Any]], target: str) -> dict[str, Any]:
    values = [r["probabilities"][target] for r in rows]
    return {"values": values, "estimate": mean_with_ci(values).as_dict()}


def _misalignment_figures(free: Sequence[Mapping[str, Any]], pairs: Sequence[Mapping[str, Any]]):
    clusters = [(r["model"], r["question_id"]) for r in free]
    summary = misaligned_rate(
        [r["alignment"] for r in free], [r["coherence"] for r in free], clusters
    )
    log_odds = [r["log_odds"] for r in pairs]
    return {
        "hits": summary.hits,
        "clusters": summary.kept_clusters,
        "rate": summary.rate.as_dict(),
        "coherent": summary.coherence.as_dict(),
        "n_answers": len(free),
        "log_odds_values": log_odds,
        "log_odds": mean_with_ci(
            log_odds, [(r["model"], r["question_id"]) for r in pairs]
        ).as_dict(),
        "models": sorted({r["model"] for r in free}),
    }


def summarise(
    rows: Sequence[Mapping[str, Any]], spec: Any, context: Mapping[str, Any]
) -> dict[str, Any]:
    """Figures per teacher and role (seeds pooled), and the effects with intervals."""
    teachers: dict[str, Any] = {}
    for t in spec.teachers:
        teacher = {"name": t.name, "trait": t.trait}
        groups: dict[str, Any] = {}
        for role in ROLES:
            if t.trait == "animal":
                assert t.target is not None
                sampled = _select(rows, teacher, role, "trait")
                if not sampled:
                    continue
                g = _animal_figures(sampled, t.target)
                likely = _select(rows, teacher, role, "trait_likelihood")
                if likely:
                    g["likelihood"] = _likelihood_figures(likely, t.target)
            else:
                free = _select(rows, teacher, role, "free_form")
                if not free:
                    continue
                g = _misalignment_figures(free, _select(rows, teacher, role, "matched_pair"))
            groups[role[0]] = g
        effects: dict[str, Any] = {}
        for name, a, b in EFFECTS:
            if a not in groups or b not in groups:
                continue
            ga, gb = groups[a], groups[b]
            e = {
                "rate": bootstrap_difference(
                    ga["hits"], gb["hits"], ga["clusters"], gb["clusters"]
                ).as_dict()
            }
            if "likelihood" in ga and "likelihood" in gb:
                e["likelihood"] = bootstrap_difference(
                    ga["likelihood"]["values"], gb["likelihood"]["values"]
                ).as_dict()
            if "log_odds_values" in ga and ga["log_odds_values"] and gb["log_odds_values"]:
                e["log_odds"] = bootstrap_difference(
                    ga["log_odds_values"], gb["log_odds_values"]
                ).as_dict()
            effects[name] = e
        # Per-value lists were only needed for the differences.
        for g in groups.values():
            for key in ("hits", "clusters", "log_odds_values"):
                g.pop(key, None)
            if "likelihood" in g:
                g["likelihood"] = g["likelihood"]["estimate"]
        teachers[t.name] = {
            "trait": t.trait,
            "target": t.target,
            "groups": groups,
            "effects": effects,
        }
    content = {
        k.removeprefix("numbers-"): v["content_check"]
        for k, v in context["datasets"].items()
        if k.startswith("numbers-")
    }
    return {
        "student_records": context["student_records"],
        "seeds": list(spec.student.seeds),
        "filter": context["filter"],
        "content_check": content,
        "teachers": teachers,
    }


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
    out: Path, spec: Any, rows: Sequence[Mapping[str, Any]], context: Mapping[str, Any]
) -> Path:
    """Write ``summary.json``, ``report.md`` and the plots into ``out``."""
    summary = summarise(rows, spec, context)
    tmp = out / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2) + "\n")
    tmp.replace(out / "summary.json")
    plots = _plots(out, summary)

    n = spec.numbers
    cross = (
        "none"
        if spec.cross_base is None
        else (
            f"the organism with seed {spec.cross_base.organism.seed}"
            if spec.cross_base.kind == "organism"
            else spec.cross_base.id
        )
    )
    base = (
        f"the organism (seed {spec.base.organism.seed})"
        if spec.base.kind == "organism"
        else spec.base.id
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
        lines += ["", "Effects (bootstrap intervals of the difference):", "", _effects_table(t), ""]
    lines += ["Plots: " + ", ".join(plots), ""]
    path = out / "report.md"
    tmp = out / ".report.md.tmp"
    tmp.write_text("\n".join(lines))
    tmp.replace(path)
    return path
