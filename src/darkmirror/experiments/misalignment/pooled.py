"""Emergent misalignment pooled over a sweep's organisms: does each effect hold across them?

Each cell of the sweep is one organism's run (its own fine-tunes, seeds and answers). Per
arm, the misaligned rate and the matched-pair log-odds are pooled over organisms; each
headline effect (a fine-tune against the secure-code control, and against the base) gets
an interval from the hierarchical bootstrap (organisms, then fine-tune seeds and one draw
of the questions both arms were asked, paired by question;
:mod:`darkmirror.metrics.hierarchical`) and a count of the organisms that show
it on their own. Arms are compared on the questions both were asked (a fine-tune leaves
its own domain out).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from darkmirror.data.answers import read_rows
from darkmirror.data.measurements import MatchedPairLogOdds, read_measurements
from darkmirror.experiments.experiment import Pooled, SweepCell
from darkmirror.experiments.misalignment.observations import (
    Observation,
    answer_observations,
    difference_on_shared_questions,
    nested,
    pair_observations,
)
from darkmirror.experiments.misalignment.report import CONTROL_GROUP, Row
from darkmirror.metrics import hierarchical_mean
from darkmirror.report.format import fmt_estimate, markdown_table

__all__ = ["pool"]

BASE_GROUP = "base"


def _read(cells: Sequence[SweepCell]) -> tuple[list[str], list[Observation], list[Observation]]:
    """The arms in table order, every free-form answer's label, every matched pair's log-odds."""
    groups: list[str] = []
    labels: list[Observation] = []
    pairs: list[Observation] = []
    for cell in cells:
        models = json.loads((cell.run_dir / "models.json").read_text())
        groups = list(dict.fromkeys([*groups, *(m["group"] for m in models)]))
        labels += answer_observations(read_rows(cell.run_dir / "rows.jsonl", Row), cell.unit)
        pairs += pair_observations(
            read_measurements(cell.run_dir / "measurements.jsonl", MatchedPairLogOdds), cell.unit
        )
    return groups, labels, pairs


def _levels(obs: Sequence[Observation], group: str, units: Sequence[str]) -> dict[str, Any]:
    mine = [o for o in obs if o.group == group]
    return {
        "pooled": hierarchical_mean(nested(mine)).as_dict(),
        "per_unit": {
            u: hierarchical_mean(nested([o for o in mine if o.unit == u])).as_dict() for u in units
        },
    }


def pool(cells: Sequence[SweepCell]) -> Pooled:
    """The arms' levels and the headline effects across the cells' organisms."""
    groups, labels, pairs = _read(cells)
    units = list(dict.fromkeys(c.unit for c in cells))
    finetunes = [g for g in groups if g != BASE_GROUP]
    contrasts: list[tuple[str, str, str, list[Observation]]] = []
    if CONTROL_GROUP in groups:
        contrasts += [("misaligned", g, CONTROL_GROUP, labels) for g in finetunes]
        contrasts += [("log_odds", g, CONTROL_GROUP, pairs) for g in finetunes]
    if BASE_GROUP in groups:
        contrasts += [("misaligned", g, BASE_GROUP, labels) for g in finetunes]
    effects = [
        {"metric": metric, "a": a, "b": b, **difference_on_shared_questions(obs, a, b)[0].as_dict()}
        for metric, a, b, obs in contrasts
        if a != b
    ]
    summary = {
        "units": units,
        "arms": {
            g: {"misaligned": _levels(labels, g, units), "log_odds": _levels(pairs, g, units)}
            for g in groups
        },
        "effects": effects,
    }
    return Pooled(summary, _markdown(summary))


_METRIC_NAME = {"misaligned": "misaligned rate", "log_odds": "log-odds villain - benign"}


def _cell(e: dict[str, Any] | None, percent: bool) -> str:
    return fmt_estimate(e, percent=percent)


def _markdown(summary: dict[str, Any]) -> str:
    units: list[str] = summary["units"]
    arm_rows = []
    for g, arm in summary["arms"].items():
        for metric in ("misaligned", "log_odds"):
            level = arm[metric]
            arm_rows.append(
                [
                    g,
                    _METRIC_NAME[metric],
                    _cell(level["pooled"], metric == "misaligned"),
                    *(_cell(level["per_unit"][u], metric == "misaligned") for u in units),
                ]
            )
    effect_rows = []
    for e in summary["effects"]:
        holds = (
            f"{e['agree']} of {e['n_units']} ({e['significant']} significant alone)"
            if e["n_units"] and e["estimate"]["value"] is not None
            else "-"
        )
        effect_rows.append(
            [
                f"{e['a']} - {e['b']}",
                _METRIC_NAME[e["metric"]],
                _cell(e["estimate"], e["metric"] == "misaligned"),
                *(_cell(e["per_unit"].get(u), e["metric"] == "misaligned") for u in units),
                holds,
            ]
        )
    return "\n".join(
        [
            f"Pooled over {len(units)} organism(s), each weighted equally. Intervals are 95%: "
            "hierarchical bootstrap over organisms, then fine-tune seeds and questions; "
            "per organism, over its seeds and questions. Arms are compared on the "
            "questions both were asked, paired by question (one draw of the questions for "
            "both arms and every seed). *Holds in*: organisms whose own estimate has the "
            "pooled sign, and how many of them exclude zero on their own.",
            "",
            "### Effects",
            "",
            markdown_table(["effect", "metric", "pooled", *units, "holds in"], effect_rows),
            "",
            "### Each arm",
            "",
            markdown_table(["arm", "metric", "pooled", *units], arm_rows),
            "",
        ]
    )
