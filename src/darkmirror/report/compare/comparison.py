"""Two runs compared: whether they can be, and every figure they share.

Two runs are comparable when they ran the same experiment (``spec.json``'s
``experiment``) or asked the same questions (question ids both ``rows.jsonl`` hold), and
when at least one figure can be set side by side: a group or model both have, a question
both asked, and the same judge (or scorer) behind the figure. A judge is named by its
source and version in every score; two runs judged by different judges would confound the
judge with the model, so such a figure is left out and said to be. Scores read from answer
files (source ``file:...``) name no judge: they cannot be checked, and the comparison says
so instead of refusing them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from darkmirror.data.answers import AnswerRow, read_rows
from darkmirror.errors import DarkmirrorError, InputError
from darkmirror.metrics import holm_adjust
from darkmirror.report.compare.figures import (
    JUDGE_METRICS,
    FigureDifference,
    FigureSpec,
    compare_figure,
    figure_specs,
    match_units,
)

__all__ = ["ComparedRun", "Comparison", "NotComparable", "compare_runs", "read_run"]

Row = AnswerRow[Any]
_SHOWN = 8  # question ids or units named in a message before "..."


class NotComparable(DarkmirrorError):
    """The two runs share nothing that can be compared; the message says what differs."""


@dataclass(frozen=True)
class ComparedRun:
    """A run directory as a comparison reads it.

    Args:
        path: The directory, as given.
        experiment: ``spec.json``'s ``experiment``, or None without one.
        spec: The resolved spec, or None.
        rows: Its answers.
    """

    path: Path
    experiment: str | None
    spec: Mapping[str, Any] | None
    rows: list[Row]

    @property
    def name(self) -> str:
        return self.path.resolve().name

    @property
    def questions(self) -> list[str]:
        return list(dict.fromkeys(r.question_id for r in self.rows))


def _read_spec(path: Path) -> Mapping[str, Any] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc.msg})", path=path, line=exc.lineno) from None
    if not isinstance(data, dict):
        raise InputError("expected a JSON object (the resolved spec)", path=path, line=1)
    return data


def read_run(path: Path) -> ComparedRun:
    """Read a finished run directory's ``rows.jsonl`` and ``spec.json``.

    Raises:
        InputError: Not a run directory, or a malformed file (naming file, line, field).
    """
    if not path.is_dir():
        raise InputError("no such run directory (compare takes two run directories)", path=path)
    rows_file = path / "rows.jsonl"
    if not rows_file.is_file():
        hint = (
            "; a sweep's runs are its cells: compare DIR/cells/<id>"
            if (path / "cells").is_dir()
            else ""
        )
        raise InputError(f"no rows.jsonl: not a finished darkmirror run{hint}", path=path)
    spec = _read_spec(path / "spec.json")
    rows = read_rows(rows_file)
    if not rows:
        raise InputError("holds no answers", path=rows_file)
    experiment = spec.get("experiment") if spec else None
    return ComparedRun(path, experiment if isinstance(experiment, str) else None, spec, rows)


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    return shown + (f", ... ({len(items)} in all)" if len(items) > _SHOWN else "")


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: data}


def settings_changed(
    a: Mapping[str, Any] | None, b: Mapping[str, Any] | None
) -> list[tuple[str, Any, Any]]:
    """The spec's settings whose values differ, as (dotted key, value in A, value in B);
    a setting one spec lacks is None there."""
    if a is None or b is None:
        return []
    fa, fb = _flatten(a), _flatten(b)
    keys = list(dict.fromkeys([*fa, *fb]))
    return [(k, fa.get(k), fb.get(k)) for k in keys if fa.get(k) != fb.get(k)]


def _sources(rows: Sequence[Row], spec: FigureSpec) -> list[str]:
    """The judges (or scorers) behind a figure's rows, as ``source version``."""
    metrics, role = (JUDGE_METRICS, "judge") if spec.family == "judge" else ((spec.key,), "scorer")
    return sorted(
        {
            f"{s.source} {s.version}" if s.version else s.source
            for r in spec.rows(rows)
            for s in r.scores
            if s.role == role and s.metric in metrics
        }
    )


@dataclass(frozen=True)
class Provenance:
    """Who scored a figure on each side, and whether that can be, and was, checked."""

    a: list[str]
    b: list[str]

    @property
    def from_files(self) -> bool:
        return any(s.startswith("file:") for s in self.a + self.b)

    @property
    def differs(self) -> bool:
        return not self.from_files and self.a != self.b


@dataclass(frozen=True)
class Comparison:
    """Two runs compared (see the module docstring).

    Args:
        a: The run compared against.
        b: The run compared.
        basis: Why they are comparable, in words.
        shared_questions: Question ids both runs hold.
        only_a: Groups or models of A that B lacks (``group x``); ``only_b`` likewise.
        settings: Settings of ``spec.json`` that differ (key, A, B).
        provenance: Figure title -> the judges or scorers behind it on each side.
        left_out: Figures not compared, with the reason.
        differences: Every figure compared, B - A, Holm-adjusted over all of them.
    """

    a: ComparedRun
    b: ComparedRun
    basis: str
    shared_questions: list[str]
    only_a: list[str]
    only_b: list[str]
    settings: list[tuple[str, Any, Any]]
    provenance: dict[str, Provenance]
    left_out: list[str] = field(default_factory=list)
    differences: list[FigureDifference] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields (``compare.json``)."""

        def run(r: ComparedRun) -> dict[str, Any]:
            return {
                "path": str(r.path),
                "name": r.name,
                "experiment": r.experiment,
                "answers": len(r.rows),
                "questions": len(r.questions),
            }

        return {
            "format": "darkmirror.compare/1",
            "a": run(self.a),
            "b": run(self.b),
            "basis": self.basis,
            "shared_questions": self.shared_questions,
            "only_a": self.only_a,
            "only_b": self.only_b,
            "settings_changed": [{"key": k, "a": va, "b": vb} for k, va, vb in self.settings],
            "provenance": {t: {"a": p.a, "b": p.b} for t, p in self.provenance.items()},
            "left_out": self.left_out,
            "differences": [d.as_dict() for d in self.differences],
        }


def _basis(a: ComparedRun, b: ComparedRun, shared: list[str]) -> str:
    """Why the runs compare, or :class:`NotComparable` naming what differs."""
    same = a.experiment is not None and a.experiment == b.experiment
    asked = (
        f"A asked {len(a.questions)} question(s): {_listed(a.questions)}; "
        f"B asked {len(b.questions)}: {_listed(b.questions)}"
    )
    if not shared:
        what = (
            "no question in common"
            if same
            else f"different experiments (A: {a.experiment or 'no spec.json'}, "
            f"B: {b.experiment or 'no spec.json'}) and no question in common"
        )
        raise NotComparable(f"runs are not comparable: {what} ({asked})")
    counts = f"{len(shared)} question(s) in common (A: {len(a.questions)}, B: {len(b.questions)})"
    if same:
        return f"same experiment ({a.experiment}); {counts}"
    return (
        f"different experiments (A: {a.experiment or 'no spec.json'}, "
        f"B: {b.experiment or 'no spec.json'}) but {counts}"
    )


def compare_runs(run_a: Path, run_b: Path, *, n_resamples: int = 2000, seed: int = 0) -> Comparison:
    """Compare run B with run A: every figure both share, B - A.

    Args:
        run_a: The run compared against (yesterday's fine-tune, the first organism).
        run_b: The run compared.
        n_resamples: Bootstrap resamples of every interval.
        seed: Seed of the bootstraps.

    Raises:
        InputError: Either directory is not a finished run, or holds a malformed file.
        NotComparable: Different experiments and no question in common, no group or
            model in common, or no figure both runs can show (e.g. different judges).
    """
    a, b = read_run(run_a), read_run(run_b)
    shared = [q for q in b.questions if q in set(a.questions)]
    basis = _basis(a, b, shared)
    units, only_a, only_b = match_units(a.rows, b.rows)
    if not units:
        raise NotComparable(
            f"runs are not comparable: no group or model in both (A has {_listed(only_a)}; "
            f"B has {_listed(only_b)})"
        )
    specs_a, specs_b = figure_specs(a.rows), figure_specs(b.rows)
    specs = [s for s in specs_b if s in specs_a]
    left_out = [f"{s.title}: only in A" for s in specs_a if s not in specs_b]
    left_out += [f"{s.title}: only in B" for s in specs_b if s not in specs_a]
    # One judge (or scorer) per family of figures: the misaligned and coherence rates read
    # the same judge, so they are checked, and said, together.
    families: dict[tuple[str, str], list[FigureSpec]] = {}
    for s in specs:
        families.setdefault((s.family, s.kind), []).append(s)
    rows_a = [r for ra, _ in units.values() for r in ra]
    rows_b = [r for _, rb in units.values() for r in rb]
    provenance: dict[str, Provenance] = {}
    kept: list[FigureSpec] = []
    for family in families.values():
        title = ", ".join(s.title for s in family)
        p = provenance[title] = Provenance(_sources(rows_a, family[0]), _sources(rows_b, family[0]))
        if p.differs:
            left_out.append(
                f"{title}: scored by different judges or scorers "
                f"(A: {', '.join(p.a)}; B: {', '.join(p.b)})"
            )
        else:
            kept += family
    differences: list[FigureDifference] = []
    for unit, (rows_a, rows_b) in units.items():
        for s in kept:
            if not s.rows(rows_a) or not s.rows(rows_b):
                continue
            d = compare_figure(unit, s, rows_a, rows_b, n_resamples=n_resamples, seed=seed)
            if d is None:
                left_out.append(f"{unit}, {s.title}: no question with a value on both sides")
            else:
                differences.append(d)
    if not differences:
        raise NotComparable(
            "nothing to compare: "
            + ("; ".join(left_out) if left_out else "no figure both runs measure")
        )
    adjusted = holm_adjust({i: d.p for i, d in enumerate(differences)})
    differences = [replace(d, p_holm=adjusted[i]) for i, d in enumerate(differences)]
    return Comparison(
        a=a,
        b=b,
        basis=basis,
        shared_questions=shared,
        only_a=only_a,
        only_b=only_b,
        settings=settings_changed(a.spec, b.spec),
        provenance=provenance,
        left_out=left_out,
        differences=differences,
    )
