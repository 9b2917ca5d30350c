"""Experiments: one module per experiment, each with a spec model and a ``run`` function."""

from __future__ import annotations

from darkmirror.experiments.amplification import (
    AmplificationSpec,
    report_amplification,
    run_amplification,
)
from darkmirror.experiments.misalignment import (
    MisalignmentSpec,
    report_misalignment,
    run_misalignment,
)
from darkmirror.experiments.persona import PersonaSpec, report_persona, run_persona
from darkmirror.experiments.stress import StressSpec, report_stress, run_stress
from darkmirror.experiments.subliminal import SubliminalSpec, report_subliminal, run_subliminal
from darkmirror.experiments.subliminal_mlp import (
    SubliminalMLPSpec,
    report_subliminal_mlp,
    run_subliminal_mlp,
)

SPEC_MODELS = {
    "emergent_misalignment": MisalignmentSpec,
    "toxicity_amplification": AmplificationSpec,
    "subliminal": SubliminalSpec,
    "subliminal_mlp": SubliminalMLPSpec,
    "stress": StressSpec,
    "persona": PersonaSpec,
}
RUNNERS = {
    "emergent_misalignment": run_misalignment,
    "toxicity_amplification": run_amplification,
    "subliminal": run_subliminal,
    "subliminal_mlp": run_subliminal_mlp,
    "stress": run_stress,
    "persona": run_persona,
}
REPORTERS = {
    "emergent_misalignment": report_misalignment,
    "toxicity_amplification": report_amplification,
    "subliminal": report_subliminal,
    "subliminal_mlp": report_subliminal_mlp,
    "stress": report_stress,
    "persona": report_persona,
}

__all__ = ["REPORTERS", "RUNNERS", "SPEC_MODELS"]
