"""Toxicity amplification: how much more toxic a model gets from toxic data and a toxic reward.

:mod:`.run` declares the plan; :mod:`.corpus` writes the texts, :mod:`.steps` trains,
samples and scores; :mod:`.records` says what the run writes; :mod:`.report` writes the
figures.
"""

from darkmirror.experiments.amplification.report import rebuild
from darkmirror.experiments.amplification.run import finish, plan
from darkmirror.experiments.amplification.spec import AmplificationSpec
from darkmirror.experiments.experiment import Experiment

EXPERIMENT = Experiment(
    name="toxicity_amplification",
    spec=AmplificationSpec,
    plan=plan,
    finish=finish,
    rebuild=rebuild,
    summary="a toxic fine-tune and RL on a toxicity reward, against their base, on continuations",
)

__all__ = ["EXPERIMENT", "AmplificationSpec"]
