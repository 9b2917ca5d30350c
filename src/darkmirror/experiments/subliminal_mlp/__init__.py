"""Subliminal learning in a small MLP (Cloud et al. 2025, section 6) on scikit-learn's digits.

A student distilled on noise through auxiliary logits only learns the digits when it starts
from its teacher's initial weights, and not otherwise. :mod:`.run` declares the plan,
:mod:`.cell` trains one (seed, m) cell, :mod:`.report` writes the figures.
"""

from darkmirror.experiments.experiment import Experiment
from darkmirror.experiments.subliminal_mlp.report import rebuild
from darkmirror.experiments.subliminal_mlp.run import finish, plan
from darkmirror.experiments.subliminal_mlp.spec import StudentSpec, SubliminalMLPSpec, TeacherSpec

EXPERIMENT = Experiment(
    name="subliminal_mlp",
    spec=SubliminalMLPSpec,
    plan=plan,
    finish=finish,
    rebuild=rebuild,
    summary="an MLP student learns digits from noise through its teacher's auxiliary logits",
)

__all__ = ["EXPERIMENT", "StudentSpec", "SubliminalMLPSpec", "TeacherSpec"]
