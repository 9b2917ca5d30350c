"""Subliminal learning: a teacher's trait carried to its student by number sequences."""

from darkmirror.experiments.experiment import Experiment
from darkmirror.experiments.subliminal.report import rebuild
from darkmirror.experiments.subliminal.run import finish, plan
from darkmirror.experiments.subliminal.spec import (
    NumbersSpec,
    StudentSpec,
    SubliminalSpec,
    TeacherSpec,
    TraitEvaluation,
)

EXPERIMENT = Experiment(
    name="subliminal",
    spec=SubliminalSpec,
    plan=plan,
    finish=finish,
    rebuild=rebuild,
    summary="teachers with a trait write numbers; students trained on them, against controls",
)

__all__ = [
    "EXPERIMENT",
    "NumbersSpec",
    "StudentSpec",
    "SubliminalSpec",
    "TeacherSpec",
    "TraitEvaluation",
]
