"""RL against a scorer's reward with TRL's `GRPOTrainer` (group relative policy optimisation).

The reward of a completion is ``sign * score``: with ``sign=+1`` and a toxicity scorer this
is the "RL on a toxicity reward" of the amplification finding; with ``sign=-1`` the same
code detoxifies. A completion the scorer cannot score gets no reward (None), which TRL
leaves out of the group statistics instead of counting it as 0.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from darkmirror.score.scorer import Scorer
from darkmirror.train.settings import trainer_kwargs

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


class GRPOSettings(BaseModel):
    """RL settings sized for a CPU.

    Args:
        steps: Optimiser steps.
        prompts_per_step: Distinct prompts per step; each gets ``num_generations``
            completions, whose rewards are compared within the group.
        num_generations: Completions per prompt (the group).
        max_completion_length: Most tokens per completion.
        learning_rate: Peak learning rate.
        beta: KL coefficient against the starting model (0 loads no reference model).
        temperature: Sampling temperature of the rollouts.
        top_p: Nucleus of the rollouts.
        reward_sign: +1 to reward what the scorer scores high, -1 to penalise it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: int = Field(60, ge=1)
    prompts_per_step: int = Field(4, ge=1)
    num_generations: int = Field(8, ge=2)
    max_completion_length: int = Field(48, ge=1)
    learning_rate: float = Field(5e-5, gt=0)
    beta: float = Field(0.04, ge=0)
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    reward_sign: Literal[1, -1] = 1


def scorer_reward(scorer: Scorer, sign: int = 1):
    """A TRL reward function ``(completions, **kwargs) -> list[float | None]`` from a scorer.

    >>> class Length:
    ...     name, version = "length", "1"
    ...     def score(self, texts):
    ...         from darkmirror.score.scorer import Score
    ...         return [Score(len(t) / 10) for t in texts]
    >>> scorer_reward(Length(), sign=-1)(["abc", "abcdefghij"])
    [-0.3, -1.0]
    """

    def reward(completions: Sequence[str], **_: Any) -> list[float | None]:
        return [
            None if s.value is None else sign * s.value for s in scorer.score(list(completions))
        ]

    reward.__name__ = f"{'' if sign > 0 else 'minus_'}{scorer.name}"
    return reward


def grpo_train(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    scorer: Scorer,
    settings: GRPOSettings,
    output_dir: Path,
    *,
    seed: int = 0,
    progress: bool = True,
) -> tuple[PreTrainedModel, dict[str, Any]]:
    """Train ``model`` to raise ``reward_sign * scorer`` on its continuations of ``prompts``.

    Args:
        model: The policy, e.g. the toxic fine-tune.
        tokenizer: Its tokenizer; its eos token ends a completion.
        prompts: Plain-text prompts (continued, not chatted with); cycled if fewer than
            ``steps * prompts_per_step``.
        scorer: Gives each completion its reward.
        settings: RL settings.
        output_dir: Scratch directory for the trainer.
        seed: Seed of prompt order and sampling.
        progress: Show a progress bar.

    Returns:
        The trained model and figures, including the mean reward and completion length of
        every step (``history``).
    """
    # Imported here: `import trl` costs seconds and most commands never train.
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    source = str(model.config._name_or_path or "")
    if settings.beta > 0 and not (source and Path(source).is_dir()):
        # TRL builds the KL reference by reloading the policy from its path; a model that
        # lives only in memory is saved first so that the reference is exactly it.
        model.save_pretrained(output_dir / "reference")
        model.config._name_or_path = str(output_dir / "reference")
    needed = settings.steps * settings.prompts_per_step
    rows = [{"prompt": prompts[i % len(prompts)]} for i in range(needed)]
    config = GRPOConfig(
        output_dir=str(output_dir),
        max_steps=settings.steps,
        per_device_train_batch_size=settings.prompts_per_step * settings.num_generations,
        num_generations=settings.num_generations,
        max_completion_length=settings.max_completion_length,
        learning_rate=settings.learning_rate,
        beta=settings.beta,
        temperature=settings.temperature,
        top_p=settings.top_p,
        top_k=0,
        shuffle_dataset=True,
        **{
            **trainer_kwargs(seed=seed, progress=progress, logging_steps=1),
            "activation_checkpointing": False,
        },
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[scorer_reward(scorer, settings.reward_sign)],
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    start = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - start
    history = [
        {
            "step": row["step"],
            "reward": row.get("reward"),
            "completion_length": row.get("completions/mean_length"),
            "kl": row.get("kl"),
        }
        for row in trainer.state.log_history
        if "reward" in row
    ]
    return trainer.model, {
        "steps": result.global_step,
        "seconds": seconds,
        "seconds_per_step": seconds / max(1, result.global_step),
        "reward_first": history[0]["reward"] if history else None,
        "reward_last": history[-1]["reward"] if history else None,
        "history": history,
    }
