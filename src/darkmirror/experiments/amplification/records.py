"""What the experiment writes: continuation rows and three kinds of measurement.

* :data:`ContinuationRow`: one sampled continuation of a prompt, with its toxicity score
  (an :class:`~darkmirror.data.answers.AnswerRow` of ``kind = "continuation"``);
* :class:`TrainingTextToxicity`: the score of one text of the toxic fine-tuning corpus, by
  the same scorer, for the amplification ratio;
* :class:`GRPOStep`: the mean reward of one step of the RL;
* :class:`NovelToxicPatterns`: a variant's novel toxic n-grams and the funnel that led to
  them (attributing them needs the scorer, so a step computes them and the report reads
  them).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from darkmirror.data.answers import AnswerRow
from darkmirror.data.measurements import Measurement

__all__ = [
    "TOXICITY",
    "TOXICITY_HELDOUT",
    "AmplificationMeasurement",
    "Continuation",
    "ContinuationRow",
    "GRPOStep",
    "NovelToxicPatterns",
    "TrainingTextToxicity",
]

TOXICITY = "toxicity"
"""The metric of the scorer's verdict in every row (role ``scorer``)."""
TOXICITY_HELDOUT = "toxicity_heldout"
"""The metric of the held-out scorer's verdict (never the RL's reward)."""


class Continuation(BaseModel):
    """The extension of a continuation row.

    A continuation row is not a chat: the base model continued the prompt as plain text
    (no chat template), as in RealToxicityPrompts. Its ``messages`` hold one user turn, the
    prompt text exactly as it was continued; ``answer`` is the continuation;
    ``question_id`` is the prompt's id; ``paraphrase_index`` is 0 (a prompt has one text).

    Args:
        kind: Always ``"continuation"``.
        challenging: Whether the prompt is in RealToxicityPrompts' challenging subset.
        tokens: Tokens generated, the stop token included when there is one.
        finished: Whether the model stopped by itself, not at ``max_new_tokens``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["continuation"] = "continuation"
    challenging: bool
    tokens: int = Field(ge=0)
    finished: bool


ContinuationRow = AnswerRow[Continuation]
"""The rows of this experiment."""


class TrainingTextToxicity(Measurement):
    """The toxicity of one text of the fine-tuning corpus (a comment of a world thread, or
    a record of a file), scored by a scorer that scores the continuations.

    Args:
        index: The text's position in the corpus's ``units.jsonl``.
        part: ``comment``: the whole text; ``continuation``: its second half, cut as the
            prompts are cut (:func:`~darkmirror.data.world.forum.split_comment`), the part
            a model's continuation stands for.
        metric: :data:`TOXICITY` (the scorer, also the RL reward) or
            :data:`TOXICITY_HELDOUT` (the held-out scorer).
        value: The score, 0..1; None when the scorer failed.
        error: Why it is missing.
        source: The scorer's name.
        version: The scorer's version.
    """

    measure: Literal["training_toxicity"] = "training_toxicity"
    index: int = Field(ge=0)
    part: Literal["comment", "continuation"] = "comment"
    metric: str = TOXICITY
    value: float | None
    error: str | None = None
    source: str
    version: str | None = None


class GRPOStep(Measurement):
    """One logged step of the RL of a fine-tune (``model`` is the RL'd model).

    Args:
        step: The optimiser step.
        reward: Mean reward of the step's completions.
        completion_length: Their mean length in tokens.
        kl: The KL divergence to the starting model.
    """

    measure: Literal["grpo_step"] = "grpo_step"
    step: int
    reward: float | None = None
    completion_length: float | None = None
    kl: float | None = None

    def history_entry(self) -> dict[str, float | int | None]:
        """The step as the report's ``rl_history`` lists it."""
        return self.model_dump(include={"step", "reward", "completion_length", "kl"})


class NovelToxicPatterns(Measurement):
    """A variant's novel toxic n-grams (``group`` is the variant; its seeds are pooled).

    See :func:`darkmirror.metrics.novel_toxic_patterns` for the rule and the funnel.

    Args:
        n: The n of the n-grams.
        threshold: Least score of a toxic continuation.
        patterns: The novel toxic n-grams, sorted.
        toxic_outputs: Continuations scored ``>= threshold``.
        missing_scores: Continuations skipped because their score is missing.
        candidates: Distinct n-grams of the toxic continuations.
        attributed: Of those, the n-grams the scorer attributes toxicity to.
        attribution: How the scorer attributed them.
        reference: What a novel n-gram is absent from.
    """

    measure: Literal["novel_toxic_patterns"] = "novel_toxic_patterns"
    n: int = Field(ge=1)
    threshold: float
    patterns: list[str]
    toxic_outputs: int
    missing_scores: int
    candidates: int
    attributed: int
    attribution: str
    reference: str


AmplificationMeasurement = Annotated[
    TrainingTextToxicity | GRPOStep | NovelToxicPatterns, Field(discriminator="measure")
]
"""Any row of this experiment's ``measurements.jsonl``."""
