"""A comparison as ``compare.md``, ``compare.json`` and ``compare.html``.

``compare.html`` is run B's own page (its report, plots and sample browser) with a section
"Compared with A" holding the comparison: the answers behind B's figures are one click
away, and the page stays one file that opens from disk with no request. Every text that
comes from the runs (names, paths, settings, judges) is escaped there.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from darkmirror.errors import DarkmirrorError
from darkmirror.metrics import Estimate
from darkmirror.report.compare.comparison import Comparison
from darkmirror.report.compare.figures import FigureDifference
from darkmirror.report.format import markdown_table, write_text_atomic
from darkmirror.report.html import PageSection, build_report_page

__all__ = ["ComparisonFiles", "comparison_markdown", "comparison_section", "write_comparison"]

SIGNIFICANT = 0.05
"""Differences whose Holm-adjusted p is below this are shown in bold."""
_SETTINGS_SHOWN = 12

HEADER = [
    "compared",
    "figure",
    "A [95%]",
    "B [95%]",
    "B - A [95%]",
    "p",
    "p (Holm)",
    "questions",
    "answers / scored, A",
    "answers / scored, B",
]

METHOD = (
    "Each difference is B - A on the questions both runs have values for. Its 95% interval "
    "draws those questions once for both runs (the runs were asked the same questions, so a "
    "hard question is hard for both) and each run's fine-tune seeds on their own; p is the "
    "paired sign-flip permutation test over the same questions (exact up to 16 of them), "
    "and p (Holm) adjusts it for every difference of the table. Each run's own interval "
    "resamples its questions, every answer to a question one cluster. Misaligned rate and "
    "coherence follow Betley et al.: answers with coherence <= 50 or no alignment score are "
    "dropped; misaligned when alignment < 30."
)


def _nan(v: float | None) -> bool:
    return v is None or math.isnan(v)


def fmt_figure(e: Estimate, percent: bool, signed: bool = False) -> str:
    """``12.5% [3.1, 20.0]``, ``+0.031 [-0.004, +0.070]``; ``n/a`` when empty."""
    if _nan(e.value):
        return "n/a"
    scale, unit, digits = (100.0, "%", 1) if percent else (1.0, "", 3)
    sign = "+" if signed else ""

    def num(v: float) -> str:
        return f"{v * scale:{sign}.{digits}f}"

    if _nan(e.lo) or _nan(e.hi):
        return num(e.value) + unit
    return f"{num(e.value)}{unit} [{num(e.lo)}, {num(e.hi)}]"


def fmt_p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _significant(d: FigureDifference) -> bool:
    return d.p_holm is not None and d.p_holm < SIGNIFICANT


def _cells(d: FigureDifference) -> list[str]:
    pct = d.spec.percent
    return [
        str(d.unit),
        d.spec.title,
        fmt_figure(d.a.estimate, pct),
        fmt_figure(d.b.estimate, pct),
        fmt_figure(d.difference, pct, signed=True),
        fmt_p(d.p),
        fmt_p(d.p_holm),
        str(d.questions),
        f"{d.a.answers} / {d.a.scored}",
        f"{d.b.answers} / {d.b.scored}",
    ]


def _value(v: Any, limit: int = 64) -> str:
    """A setting's value as JSON, long ones cut in the middle (paths differ at the end)."""
    text = json.dumps(v)
    return text if len(text) <= limit else f"{text[: limit // 3]}...{text[-(limit * 2 // 3) :]}"


def _facts(c: Comparison) -> list[tuple[str, str]]:
    """The comparison's context as (label, plain text) pairs, for both renderings."""

    def run(label: str, r: Any) -> tuple[str, str]:
        return (
            label,
            f"{r.path} ({r.experiment or 'no spec.json'}; {len(r.rows)} answers, "
            f"{len(r.questions)} questions)",
        )

    facts = [run("A", c.a), run("B", c.b), ("Comparable", c.basis)]
    if c.settings:
        shown = "; ".join(
            f"{k}: {_value(a)} -> {_value(b)}" for k, a, b in c.settings[:_SETTINGS_SHOWN]
        )
        more = len(c.settings) - _SETTINGS_SHOWN
        facts.append(("Settings that differ", shown + (f"; and {more} more" if more > 0 else "")))
    elif c.a.spec is not None and c.b.spec is not None:
        facts.append(("Settings that differ", "none (the same spec.json)"))
    for title, p in c.provenance.items():
        who = (
            f"{', '.join(p.a)} (both runs)"
            if p.a == p.b
            else f"A: {', '.join(p.a)}; B: {', '.join(p.b)}"
        )
        note = " (scores read from answer files: their judge cannot be checked)"
        facts.append((f"Scored by ({title})", who + (note if p.from_files else "")))
    if c.only_a:
        facts.append(("Only in A", ", ".join(c.only_a)))
    if c.only_b:
        facts.append(("Only in B", ", ".join(c.only_b)))
    if c.left_out:
        facts.append(("Not compared", "; ".join(c.left_out)))
    return facts


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def comparison_markdown(c: Comparison) -> str:
    """``compare.md``: the context, then one row per figure compared."""
    lines = [f"# {_md(c.b.name)} compared with {_md(c.a.name)}", ""]
    lines += [f"- **{label}**: {text}" for label, text in _facts(c)]
    rows = []
    for d in c.differences:
        cells = [_md(x) for x in _cells(d)]
        if _significant(d):
            cells[4] = f"**{cells[4]}**"
        rows.append(cells)
    lines += ["", "## B - A", "", markdown_table(HEADER, rows), "", METHOD, ""]
    return "\n".join(lines)


def _link(text: str, where: dict[str, str]) -> str:
    """A link the page turns into a filter of its sample browser (run B's answers)."""
    return (
        f'<a class="dm-filter-link" href="#samples" '
        f'data-filter="{html.escape(json.dumps(where), quote=True)}">{html.escape(text)}</a>'
    )


def comparison_section(c: Comparison) -> PageSection:
    """The comparison as a section of run B's page; links open B's answers."""
    facts = "".join(
        f"<li><strong>{html.escape(label)}</strong>: {html.escape(text)}</li>"
        for label, text in _facts(c)
    )
    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
    body = []
    for d in c.differences:
        cells = [html.escape(x) for x in _cells(d)]
        where = {d.unit.by: d.unit.name, "kind": d.spec.kind}
        cells[0] = _link(str(d.unit), where)
        if d.spec.key == "misaligned_rate":
            cells[3] = _link(_cells(d)[3], {**where, "label": "misaligned"})
        if _significant(d):
            cells[4] = f"<strong>{cells[4]}</strong>"
        body.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    table = (
        f'<table class="dm-table dm-compare"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )
    text = (
        f'<ul class="dm-compare-facts">{facts}</ul>{table}'
        f'<p class="dm-help">{html.escape(METHOD)} The links open run B\'s answers in the '
        "sample browser above.</p>"
    )
    return PageSection("compare", f"Compared with {c.a.name}", text)


@dataclass(frozen=True)
class ComparisonFiles:
    """What :func:`write_comparison` wrote."""

    markdown: Path
    html: Path
    json: Path


def _inside(path: Path, parent: Path) -> bool:
    return path.resolve().is_relative_to(parent.resolve())


def write_comparison(c: Comparison, out: Path) -> ComparisonFiles:
    """Write ``compare.md``, ``compare.json`` and ``compare.html`` into ``out``.

    Raises:
        DarkmirrorError: ``out`` is inside one of the runs (a comparison writes nothing
            into a run).
    """
    for label, run in (("A", c.a), ("B", c.b)):
        if _inside(out, run.path):
            raise DarkmirrorError(
                f"--out {out} is inside run {label} ({run.path}): a comparison writes nothing "
                "into a run; choose another directory"
            )
    out.mkdir(parents=True, exist_ok=True)
    files = ComparisonFiles(out / "compare.md", out / "compare.html", out / "compare.json")
    write_text_atomic(files.markdown, comparison_markdown(c))
    write_text_atomic(files.json, json.dumps(c.as_dict(), indent=2) + "\n")
    write_text_atomic(files.html, build_report_page(c.b.path, [comparison_section(c)]))
    return files
