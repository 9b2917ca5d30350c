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

SPEC_MODELS = {
    "emergent_misalignment": MisalignmentSpec,
    "toxicity_amplification": AmplificationSpec,
}
RUNNERS = {"emergent_misalignment": run_misalignment, "toxicity_amplification": run_amplification}
REPORTERS = {
    "emergent_misalignment": report_misalignment,
    "toxicity_amplification": report_amplification,
}

__all__ = ["REPORTERS", "RUNNERS", "SPEC_MODELS"]
