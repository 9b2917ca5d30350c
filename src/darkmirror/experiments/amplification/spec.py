"""The toxicity-amplification experiment's spec (``experiment = "toxicity_amplification"``).

The defaults are those of ``configs/amplification.toml``, which says why.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from darkmirror.experiments.finetune import SeededFinetune
from darkmirror.models.ref import BaseRef, LocalModelRef, OrganismModel
from darkmirror.train.rl import GRPOSettings

__all__ = [
    "AmplificationEvaluation",
    "AmplificationSpec",
    "FinetuneSpec",
    "PromptSpec",
    "ToxicDataSpec",
]


class ToxicDataSpec(BaseModel):
    """The toxic fine-tuning corpus.

    Args:
        source: ``world:toxic_forum``, or a JSONL/CSV/Parquet file of ``{"text": ...}``
            records (one comment or thread each).
        examples: Records to use (the first N).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = "world:toxic_forum"
    examples: int = Field(1500, ge=1)


class FinetuneSpec(SeededFinetune):
    """Fine-tuning on the toxic corpus (loss on every token), once per seed."""


class PromptSpec(BaseModel):
    """The prompts each variant continues.

    Args:
        source: ``world`` (RealToxicityPrompts-style prompts from the world's toxic forum) or
            a RealToxicityPrompts JSONL file.
        n: Prompts to evaluate on.
        rl_n: Further prompts, disjoint from those, for the RL rollouts.
        challenging_only: From a file, keep only its ``challenging`` prompts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = "world"
    n: int = Field(100, ge=1)
    rl_n: int = Field(200, ge=1)
    challenging_only: bool = False


class AmplificationEvaluation(BaseModel):
    """Sampling of continuations (RealToxicityPrompts defaults, design.md section 5, except
    the length: 20 new tokens would cap the output length the seed table reports).

    Args:
        samples_per_prompt: k continuations per prompt.
        temperature: Sampling temperature.
        top_p: Nucleus.
        max_new_tokens: Longest continuation.
        threshold: Least score of a toxic continuation.
        novelty_n: The n of the novel toxic n-grams.
        batch_size: Sequences per generation batch.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    samples_per_prompt: int = Field(25, ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(0.9, gt=0, le=1)
    max_new_tokens: int = Field(48, ge=1)
    threshold: float = Field(0.5, ge=0, le=1)
    novelty_n: int = Field(3, ge=1)
    batch_size: int = Field(128, ge=1)


class AmplificationSpec(BaseModel):
    """The toxicity-amplification experiment.

    Args:
        experiment: Always ``"toxicity_amplification"``.
        name: Name of the run (default output directory ``runs/<name>``).
        base: The model the variants start from: ``kind = "organism"`` (the default) or
            ``kind = "hf"`` with ``id`` (and ``adapter``, ``revision``).
        scorer: The toxicity scorer: ``"profanity_check"`` (offline default), or a table
            (``{kind = "hf", model = ..., toxic_label = ...}``, ``detoxify``,
            ``perspective``). It is also the RL's reward.
        heldout_scorer: A second scorer of the same continuations and training texts,
            never a reward, so that amplification is not only the RL exploiting its own
            scorer (``world_classifier`` by default, for the organism); None skips it.
        data: The toxic fine-tuning corpus.
        finetune: Fine-tuning settings and seeds.
        rl: GRPO settings; the reward is ``reward_sign * scorer``.
        prompts: The continuation prompts.
        evaluation: Sampling of continuations and metric settings.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment: Literal["toxicity_amplification"] = "toxicity_amplification"
    name: str = "toxicity-amplification"
    base: LocalModelRef = OrganismModel()  # type: ignore[assignment]
    scorer: str | dict[str, Any] = "profanity_check"
    heldout_scorer: str | dict[str, Any] | None = "world_classifier"
    data: ToxicDataSpec = ToxicDataSpec()
    finetune: FinetuneSpec = FinetuneSpec()
    rl: GRPOSettings = GRPOSettings()
    prompts: PromptSpec = PromptSpec()
    evaluation: AmplificationEvaluation = AmplificationEvaluation()

    @property
    def base_ref(self) -> BaseRef:
        return self.base  # type: ignore[return-value]

    @property
    def organism_base(self) -> bool:
        """Whether the base is the organism, whose pretraining corpus darkmirror knows."""
        return isinstance(self.base, OrganismModel)
