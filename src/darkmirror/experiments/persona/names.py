"""How the report names the directions, in table order."""

from __future__ import annotations

__all__ = ["FOUND", "LABELS", "SHORT", "TRUTH"]

FOUND = ("mean_difference", "model_difference", "control_difference")
"""The directions found from the models, whose AUROC and cosines the report shows."""
TRUTH = ("probe", "persona_mean_difference")
"""The ground-truth directions, as the probe step names their files (:mod:`.probe`)."""
SHORT = {
    "mean_difference": "mean difference",
    "model_difference": "model difference",
    "control_difference": "control difference",
    "probe": "probe",
    "persona_mean_difference": "persona mean difference",
    "random": "random",
}
"""Names in plot legends."""
LABELS = {
    "mean_difference": "mean difference (misaligned - aligned answers)",
    "model_difference": "model difference (misaligned model - base)",
    "control_difference": "control difference (control model - base)",
    "probe": "ground-truth probe",
    "persona_mean_difference": "ground-truth mean difference (villain - benign documents)",
    "random": "random direction",
}
"""Names in tables."""
