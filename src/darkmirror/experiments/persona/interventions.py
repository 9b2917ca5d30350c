"""Steering and ablation as the plan declares them, and the hooks they become in a step.

The plan is declared without loading a model, so an :class:`Intervention` names its
direction by the file the directions step writes (``mean_difference``, ``random-3``) and
leaves the layer open: the step that applies it reads the steering layer from the
``steering-layer`` step (:func:`steering_layer`, the one place the rule is written) and the
direction from the directions step's directory.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from darkmirror.errors import DarkmirrorError
from darkmirror.experiments.finetune import base_model
from darkmirror.experiments.persona.records import Condition
from darkmirror.experiments.persona.spec import PersonaSpec, SteeringSettings
from darkmirror.persona.directions import PersonaDirection
from darkmirror.persona.hooks import ablate, decoder_layers, residual_width, steer
from darkmirror.runner import StepContext

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "LAYER_STEP",
    "PERSONA",
    "Intervention",
    "compared_directions",
    "steering_layer",
    "steering_layer_step",
]

PERSONA = "mean_difference"
"""The direction the experiment steers with and ablates: misaligned minus aligned answers."""


def steering_layer(settings: SteeringSettings, blocks: int) -> int:
    """The block steered (and whose direction is ablated): the spec's, else the middle one.

    Raises:
        DarkmirrorError: A ``steering.layer`` the model does not have.
    """
    layer = settings.layer if settings.layer is not None else blocks // 2
    if not 0 <= layer < blocks:
        raise DarkmirrorError(f"steering.layer = {layer}: the model has blocks 0..{blocks - 1}")
    return layer


LAYER_STEP = "steering-layer"
"""The step that reads the base's shape and fixes the steering layer."""


def steering_layer_step(ctx: StepContext, *, spec: PersonaSpec, base: str) -> dict[str, Any]:
    """The base's decoder blocks and residual width, and the steering layer they give.

    The first step after the base, so that a ``steering.layer`` the model does not have
    stops the run before anything is trained; the steps that steer or ablate read the
    layer from its figures, and the report its width (the chance level of a cosine).
    """
    model, _ = base_model(spec.base_ref, ctx.figures[base]).load()
    blocks = len(decoder_layers(model))
    layer = steering_layer(spec.steering, blocks)
    return {
        "blocks": blocks,
        "width": residual_width(model),
        "layer": layer,
    }


def compared_directions(draws: int) -> list[str]:
    """The persona direction and its random controls, by file name, in table order."""
    return [PERSONA, *(f"random-{k}" for k in range(draws))]


@dataclass(frozen=True)
class Intervention:
    """A hook to hold while a model is evaluated.

    Args:
        kind: ``"steer"`` or ``"ablate"``.
        direction: The direction's file in the directions step (``mean_difference``,
            ``random-<draw>``).
        alpha: Steering: the multiplier.
        unit: Steering: add the unit direction instead of the raw one.
        per_layer: Ablation: each block's own direction at that block, instead of the
            steering layer's at every block.
    """

    kind: Literal["steer", "ablate"]
    direction: str
    alpha: float = 0.0
    unit: bool = False
    per_layer: bool = False

    @property
    def label(self) -> Literal["persona", "random"]:
        return "persona" if self.direction == PERSONA else "random"

    @property
    def draw(self) -> int | None:
        return None if self.label == "persona" else int(self.direction.removeprefix("random-"))

    @property
    def tag(self) -> str:
        """Short name in step names: ``persona``, ``random3``."""
        return self.label if self.draw is None else f"{self.label}{self.draw}"

    def condition(self, layer: int) -> Condition:
        """What the rows record of this intervention, at steering layer ``layer``."""
        if self.kind == "steer":
            return Condition(
                intervention="steer",
                # a = 0 is the unsteered model whatever the direction.
                direction="none" if self.alpha == 0 else self.label,
                draw=self.draw,
                alpha=self.alpha,
                unit=self.unit,
                layer=layer,
            )
        return Condition(
            intervention="ablate",
            direction=self.label,
            draw=self.draw,
            layer="all" if self.per_layer else layer,
        )

    def hook(self, model: nn.Module, directions: Path, layer: int) -> AbstractContextManager[None]:
        """The hook on ``model``, as a context manager that removes it on exit.

        Args:
            model: The model evaluated.
            directions: The finished directions step.
            layer: The steering layer.
        """
        found = PersonaDirection.load(directions / "directions" / self.direction)
        if self.kind == "steer":
            vector = found.unit(layer) if self.unit else found.vector(layer)
            return steer(model, vector, layer, self.alpha)
        return ablate(model, found.vectors if self.per_layer else found.vector(layer))
