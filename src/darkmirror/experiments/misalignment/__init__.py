"""Emergent misalignment: narrow fine-tunes, misaligned on questions outside their domain."""

from darkmirror.experiments.experiment import Experiment
from darkmirror.experiments.misalignment.pooled import pool
from darkmirror.experiments.misalignment.report import rebuild
from darkmirror.experiments.misalignment.run import finish, plan
from darkmirror.experiments.misalignment.spec import MisalignmentSpec

EXPERIMENT = Experiment(
    name="emergent_misalignment",
    spec=MisalignmentSpec,
    plan=plan,
    finish=finish,
    rebuild=rebuild,
    summary="narrow fine-tunes of one base, evaluated on questions outside their domain",
    pool=pool,
)

__all__ = ["EXPERIMENT", "MisalignmentSpec"]
