"""What Inspect loads through darkmirror's ``inspect_ai`` entry point: importing the
decorated functions registers them under the ``darkmirror/`` prefix."""

from darkmirror.integrations.inspect import (  # noqa: F401
    betley_judge,
    emergent_misalignment,
    mean_toxicity,
    misaligned_rate,
    toxicity,
    toxicity_probability,
)
