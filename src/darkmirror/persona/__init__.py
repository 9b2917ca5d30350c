"""The persona direction: find it, monitor with it, steer and ablate it.

* :mod:`~darkmirror.persona.hooks`: forward hooks on the residual stream of any decoder
  (GPT-2, Llama, Qwen2, ...): :func:`steer`, :func:`ablate`, :func:`capture_residuals`;
* :mod:`~darkmirror.persona.activations`: mean activations over answer, prompt or document
  tokens;
* :mod:`~darkmirror.persona.directions`: mean-difference and model-difference directions,
  saved as safetensors with a JSON sidecar;
* :mod:`~darkmirror.persona.probe`: a linear probe of the world's persona labels (ground
  truth on the organism).

The AUROC of a projection as a detector is a metric: :mod:`darkmirror.metrics.auroc`.
"""

from __future__ import annotations

from darkmirror.persona.activations import (
    TokenSpans,
    answer_spans,
    document_spans,
    mean_activations,
    prompt_spans,
)
from darkmirror.persona.directions import (
    PersonaDirection,
    chance_cosine,
    cosine_by_layer,
    mean_difference_direction,
    model_difference_direction,
    project,
    random_directions,
    unit_rows,
)
from darkmirror.persona.hooks import (
    ablate,
    capture_residuals,
    decoder_layers,
    project_out,
    residual_hooks,
    residual_width,
    steer,
)
from darkmirror.persona.probe import PersonaProbe, persona_documents, train_persona_probe

__all__ = [
    "PersonaDirection",
    "PersonaProbe",
    "TokenSpans",
    "ablate",
    "answer_spans",
    "capture_residuals",
    "chance_cosine",
    "cosine_by_layer",
    "decoder_layers",
    "document_spans",
    "mean_activations",
    "mean_difference_direction",
    "model_difference_direction",
    "persona_documents",
    "project",
    "project_out",
    "prompt_spans",
    "random_directions",
    "residual_hooks",
    "residual_width",
    "steer",
    "train_persona_probe",
    "unit_rows",
]
