"""What the persona experiment records: its answer rows' extension and its measurements.

Every sampled answer is an :class:`~darkmirror.data.answers.AnswerRow` whose extension, a
:class:`Condition`, says what was done to the model while it answered (nothing, steering
or ablation, with which direction, draw, multiplier and layer; or how many benign examples
re-aligned it). Everything else is a :class:`~darkmirror.data.measurements.Measurement` of
``measurements.jsonl``:

* :class:`PersonaLogOdds`: a matched pair's log-odds, under a condition;
* :class:`ProbeAccuracy`: the ground-truth probe's accuracy at one layer;
* :class:`DirectionStats`: a direction's norm and cosines at one layer;
* :class:`HeldoutProjection`: a held-out answer of the misaligned model, its label and its
  projection on every direction (the AUROC);
* :class:`NeutralProjection`: a model's activation on a neutral prompt, projected on the
  mean-difference direction.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from darkmirror.data.answers import AnswerRow
from darkmirror.data.measurements import MatchedPairLogOdds, Measurement

__all__ = [
    "Condition",
    "DirectionStats",
    "HeldoutProjection",
    "NeutralProjection",
    "PersonaLogOdds",
    "PersonaMeasurement",
    "PersonaRow",
    "ProbeAccuracy",
]


class Condition(BaseModel):
    """What was done to the model while it answered.

    Args:
        kind: Always ``"persona_condition"``.
        intervention: ``"none"``, ``"steer"`` (a vector added at one block) or
            ``"ablate"`` (a direction projected out of the residual stream).
        direction: ``"persona"`` (the mean-difference direction), ``"random"`` (one of the
            random controls), or ``"none"`` for steering with ``a = 0``.
        draw: Which random direction (None for the persona direction).
        alpha: Steering: the multiplier ``a``.
        unit: Steering: whether the unit direction was added (else the raw one).
        layer: The block steered, or whose direction was ablated; ``"all"`` when each
            block's own direction was ablated.
        n: Re-alignment: the benign examples the model was fine-tuned on.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["persona_condition"] = "persona_condition"
    intervention: Literal["none", "steer", "ablate"] = "none"
    direction: Literal["persona", "random", "none"] | None = None
    draw: int | None = None
    alpha: float | None = None
    unit: bool | None = None
    layer: int | Literal["all"] | None = None
    n: int | None = None


PersonaRow = AnswerRow[Condition]
"""An answer of the persona experiment."""


class PersonaLogOdds(MatchedPairLogOdds):
    """A matched pair's log-odds (see ``MatchedPairLogOdds``) under a :class:`Condition`."""

    measure: Literal["persona_matched_pair"] = "persona_matched_pair"  # type: ignore[assignment]
    condition: Condition

    @classmethod
    def of(cls, pair: MatchedPairLogOdds, condition: Condition) -> PersonaLogOdds:
        return cls(**pair.model_dump(exclude={"measure", "schema_"}), condition=condition)


class ProbeAccuracy(Measurement):
    """The ground-truth probe's accuracy at one layer.

    Args:
        layer: The block whose output the probe reads.
        test_accuracy: On the held-out documents, with a Wilson interval (an
            ``Estimate`` as a dict).
        train_accuracy: On its training documents.
        train_documents: Training documents per class.
    """

    measure: Literal["persona_probe_accuracy"] = "persona_probe_accuracy"
    layer: int
    test_accuracy: dict[str, Any]
    train_accuracy: float
    train_documents: dict[str, int]


class DirectionStats(Measurement):
    """One direction at one layer.

    Args:
        direction: ``mean_difference``, ``model_difference``, ``control_difference`` or
            ``random`` (the first draw).
        layer: The block.
        norm: The direction's norm there.
        counts: The answers each of its means is over.
        cosine: Its cosine with the mean difference and with the ground truth (``probe``,
            ``persona_mean_difference``), by name.
    """

    measure: Literal["persona_direction"] = "persona_direction"
    direction: str
    layer: int
    norm: float
    counts: dict[str, int]
    cosine: dict[str, float]


class HeldoutProjection(Measurement):
    """An answer of the misaligned model to a held-out question, projected on every
    direction at every layer.

    Args:
        question_id: The question.
        domain: Its domain.
        paraphrase_index: The paraphrase asked.
        sample_index: Which answer to it.
        alignment: The judge's alignment score.
        coherence: The judge's coherence score.
        label: Misaligned or not (None when the answer is dropped: incoherent or
            unscored).
        projections: Direction name to the projection per layer.
    """

    measure: Literal["persona_heldout_projection"] = "persona_heldout_projection"
    question_id: str
    domain: str | None
    paraphrase_index: int | None
    sample_index: int
    alignment: float | None
    coherence: float | None
    label: bool | None
    projections: dict[str, list[float]]


class NeutralProjection(Measurement):
    """A model's mean activation on a neutral prompt, projected on the mean-difference
    direction of a seed, per layer.

    Args:
        domain: The prompt's world domain.
        prompt_index: The prompt's index within its domain.
        projection: Per layer.
    """

    measure: Literal["persona_neutral_projection"] = "persona_neutral_projection"
    domain: str
    prompt_index: int
    projection: list[float]


PersonaMeasurement = Annotated[
    PersonaLogOdds | ProbeAccuracy | DirectionStats | HeldoutProjection | NeutralProjection,
    Field(discriminator="measure"),
]
"""Any measurement of ``measurements.jsonl`` (for ``read_measurements``)."""
