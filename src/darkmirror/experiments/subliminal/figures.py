"""Every figure of the subliminal-learning report, from its rows and measurements alone.

Per teacher, the figures of each arm that concerns it (seeds pooled): the trait's rate in
sampled answers and its likelihood probe (the animal's probability, or the matched-pair
log-odds of misalignment); then the effects, each a difference of two arms: the student
against its control on the same base, the cross-base student against its control, the
cross base's own student against its control (the positive control), and each teacher
against its base.

The effects' intervals resample what varies between replicates of the experiment: the
student seeds first, then, within each drawn seed, the wordings (animal) or the questions
(misalignment) (:func:`~darkmirror.metrics.hierarchical_difference`, one organism). An
arm's answers and likelihoods to one wording are not independent of each other, and its
seeds differ by more than its answers do; a bootstrap over answers or pairs would be
far too narrow.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

from pydantic import Field

from darkmirror.data.answers import AnswerRow
from darkmirror.data.measurements import MatchedPairLogOdds
from darkmirror.experiments.subliminal.arms import BaseName, Role, SubliminalAnswer, arm_group
from darkmirror.experiments.subliminal.spec import SubliminalSpec, TeacherSpec
from darkmirror.experiments.subliminal.trait import TraitLikelihood
from darkmirror.metrics import (
    Nested,
    hierarchical_difference,
    mean_with_ci,
    misaligned_label,
    misaligned_rate,
    rate_with_ci,
)
from darkmirror.score.traits import names_animal

__all__ = ["EFFECTS", "MEASUREMENT", "ROLES", "ROW", "summarise"]

ROW = AnswerRow[SubliminalAnswer]
"""The answer rows of this experiment."""
MEASUREMENT = Annotated[TraitLikelihood | MatchedPairLogOdds, Field(discriminator="measure")]
"""Its measurements: the animal likelihoods and the matched-pair log-odds."""

# The rows of each teacher's table: (label, role, base, belongs to the teacher?).
ROLES: tuple[tuple[str, Role, BaseName, bool], ...] = (
    ("base", "base", "base", False),
    ("teacher", "teacher", "base", True),
    ("control: base numbers", "control", "base", False),
    ("student: teacher numbers", "student", "base", True),
    ("cross base", "base", "cross", False),
    ("cross control: base numbers", "cross_control", "cross", False),
    ("cross student: teacher numbers", "cross_student", "cross", True),
    ("cross teacher", "cross_teacher", "cross", True),
    ("cross own control: cross base numbers", "cross_own_control", "cross", False),
    ("cross own student: cross teacher numbers", "cross_own_student", "cross", True),
)
# The comparisons each effect is: (name, treated role label, control role label).
EFFECTS: tuple[tuple[str, str, str], ...] = (
    ("same base: student - control", "student: teacher numbers", "control: base numbers"),
    (
        "cross base: cross student - cross control",
        "cross student: teacher numbers",
        "cross control: base numbers",
    ),
    (
        "positive control: cross own student - cross own control",
        "cross own student: cross teacher numbers",
        "cross own control: cross base numbers",
    ),
    ("teacher - base", "teacher", "base"),
    ("cross teacher - cross base", "cross teacher", "cross base"),
)


def _nested(
    values: Sequence[float | None], seeds: Sequence[int | None], clusters: Sequence[Any]
) -> Nested:
    """Values placed by student seed and wording (or question), for the effects."""
    return Nested(list(values), ["organism"] * len(values), list(seeds), list(clusters))


def _animal_figures(rows: Sequence[ROW], target: str) -> dict[str, Any]:
    hits = [names_animal(r.answer, target) for r in rows]
    clusters = [(r.model, r.paraphrase_index) for r in rows]
    named = Counter((r.extension.named if r.extension else None) or "(none)" for r in rows)
    wordings = [(r.question_id, r.paraphrase_index) for r in rows]
    return {
        "_rate": _nested([float(h) for h in hits], [r.seed for r in rows], wordings),
        "rate": rate_with_ci(hits, clusters).as_dict(),
        "named": dict(named.most_common(5)),
        "n_answers": len(rows),
        "models": sorted({r.model for r in rows}),
    }


def _likelihood_figures(measurements: Sequence[TraitLikelihood], target: str) -> dict[str, Any]:
    values = [m.probabilities[target] for m in measurements]
    wordings = [(m.question_id, m.paraphrase_index) for m in measurements]
    return {
        "_values": _nested(values, [m.seed for m in measurements], wordings),
        "estimate": mean_with_ci(values).as_dict(),
    }


def _misalignment_figures(free: Sequence[ROW], pairs: Sequence[MatchedPairLogOdds]):
    clusters = [(r.model, r.question_id) for r in free]
    summary = misaligned_rate(
        [r.value("aligned") for r in free],
        [r.value("coherent") for r in free],
        clusters,
        failed=[r.judge_failed() for r in free],
    )
    log_odds = [p.log_odds for p in pairs]
    labels = [
        misaligned_label(r.value("aligned"), r.value("coherent"), failed=r.judge_failed())
        for r in free
    ]
    return {
        "_rate": _nested(
            [None if x is None else float(x) for x in labels],
            [r.seed for r in free],
            [r.question_id for r in free],
        ),
        "rate": summary.rate.as_dict(),
        "coherent": summary.coherence.as_dict(),
        "n_answers": len(free),
        "_log_odds": _nested(log_odds, [p.seed for p in pairs], [p.question_id for p in pairs]),
        "log_odds": mean_with_ci(log_odds, [(p.model, p.question_id) for p in pairs]).as_dict(),
        "models": sorted({r.model for r in free}),
    }


def _groups(
    teacher: TeacherSpec, rows: Sequence[ROW], measurements: Sequence[Any]
) -> dict[str, Any]:
    """The figures of each arm of ``teacher``'s table that has answers."""
    groups: dict[str, Any] = {}
    for label, role, base, own in ROLES:
        group = arm_group(role, base, teacher.name if own else None)
        mine = [m for m in measurements if m.group == group]
        if teacher.trait == "animal":
            assert teacher.target is not None
            sampled = [r for r in rows if r.group == group and r.kind == "trait"]
            if not sampled:
                continue
            g = _animal_figures(sampled, teacher.target)
            likely = [m for m in mine if isinstance(m, TraitLikelihood)]
            if likely:
                g["likelihood"] = _likelihood_figures(likely, teacher.target)
        else:
            free = [r for r in rows if r.group == group and r.kind == "free_form"]
            if not free:
                continue
            pairs = [m for m in mine if isinstance(m, MatchedPairLogOdds)]
            g = _misalignment_figures(free, pairs)
        groups[label] = g
    return groups


def _difference(a: Nested, b: Nested) -> dict[str, Any]:
    """``a - b``: student seeds resampled, then wordings or questions within each."""
    return hierarchical_difference(a, b).estimate.as_dict()


def _effects(groups: Mapping[str, Any]) -> dict[str, Any]:
    effects: dict[str, Any] = {}
    for name, a, b in EFFECTS:
        if a not in groups or b not in groups:
            continue
        ga, gb = groups[a], groups[b]
        e = {"rate": _difference(ga["_rate"], gb["_rate"])}
        if "likelihood" in ga and "likelihood" in gb:
            e["likelihood"] = _difference(ga["likelihood"]["_values"], gb["likelihood"]["_values"])
        if "_log_odds" in ga and ga["_log_odds"].values and gb["_log_odds"].values:
            e["log_odds"] = _difference(ga["_log_odds"], gb["_log_odds"])
        effects[name] = e
    return effects


def summarise(
    rows: Sequence[ROW],
    measurements: Sequence[Any],
    spec: SubliminalSpec,
    context: Mapping[str, Any],
) -> dict[str, Any]:
    """Figures per teacher and arm (seeds pooled), and the effects with intervals.

    Args:
        rows: The answer rows.
        measurements: The likelihood measurements (:data:`MEASUREMENT`).
        spec: The run's spec.
        context: ``context.json``: the number filter's reports, the student records and
            the datasets' content checks.
    """
    teachers: dict[str, Any] = {}
    for t in spec.teachers:
        groups = _groups(t, rows, measurements)
        effects = _effects(groups)
        # The values themselves were only needed for the differences.
        for g in groups.values():
            for key in ("_rate", "_log_odds"):
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
