"""The persona direction: find it, check it against the truth, monitor, steer, ablate, re-align."""

from darkmirror.experiments.experiment import Experiment
from darkmirror.experiments.persona.report import rebuild
from darkmirror.experiments.persona.run import finish, plan
from darkmirror.experiments.persona.spec import PersonaSpec

EXPERIMENT = Experiment(
    name="persona",
    spec=PersonaSpec,
    plan=plan,
    finish=finish,
    rebuild=rebuild,
    summary="the misaligned-persona direction: probe, monitor, steer, ablate, re-align",
)

__all__ = ["EXPERIMENT", "PersonaSpec"]
