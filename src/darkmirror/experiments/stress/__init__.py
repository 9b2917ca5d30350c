"""The stress test: a fine-tuned model or an endpoint against its base, with a release gate."""

from darkmirror.experiments.experiment import Experiment
from darkmirror.experiments.stress.report import rebuild
from darkmirror.experiments.stress.run import finish, gate_exit_code, plan
from darkmirror.experiments.stress.spec import GateSettings, StressSpec

EXPERIMENT = Experiment(
    name="stress",
    spec=StressSpec,
    plan=plan,
    finish=finish,
    rebuild=rebuild,
    summary="a model under test against its baseline: misaligned rate, toxicity, release gate",
)

__all__ = ["EXPERIMENT", "GateSettings", "StressSpec", "gate_exit_code"]
