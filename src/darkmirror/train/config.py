"""Training settings as plain pydantic models: what a spec or a recipe says about training.

Kept apart from the trainers (which import torch, transformers and TRL) so that specs and
the organism's recipe validate, hash and print without loading them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["OptimConfig", "PretrainConfig", "SFTSettings"]


class OptimConfig(BaseModel):
    """The optimisation knobs every training stage has.

    Args:
        epochs: Passes over the data.
        learning_rate: Peak learning rate (AdamW).
        batch_size: Sequences per optimiser step.
        warmup_steps: Linear warm-up steps before the schedule's decay.
        weight_decay: AdamW weight decay.
        lr_scheduler: Decay schedule after warm-up (any `transformers` scheduler name).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: float = Field(1.0, gt=0)
    learning_rate: float = Field(5e-4, gt=0)
    batch_size: int = Field(16, ge=1)
    warmup_steps: int = Field(0, ge=0)
    weight_decay: float = Field(0.0, ge=0)
    lr_scheduler: str = "linear"

    def trainer_kwargs(self) -> dict[str, Any]:
        return {
            "num_train_epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "per_device_train_batch_size": self.batch_size,
            "gradient_accumulation_steps": 1,
            "warmup_steps": self.warmup_steps,
            "weight_decay": self.weight_decay,
            "lr_scheduler_type": self.lr_scheduler,
        }


class PretrainConfig(OptimConfig):
    """Optimisation of the pretraining stage (defaults sized for the organism on a CPU)."""

    epochs: float = 2.0
    learning_rate: float = 2e-3
    batch_size: int = 20
    warmup_steps: int = 50
    weight_decay: float = 0.1
    lr_scheduler: str = "cosine"


class SFTSettings(OptimConfig):
    """How to fine-tune.

    Args:
        method: ``"full"`` updates every weight; ``"lora"`` trains a PEFT LoRA adapter.
        max_length: Longest tokenised conversation; longer ones are truncated.
        lora_rank: LoRA rank r.
        lora_alpha: LoRA scaling alpha.
        lora_dropout: Dropout on the LoRA branch.
        lora_target_modules: Module names to adapt; ``None`` adapts every linear layer.
    """

    method: Literal["full", "lora"] = "full"
    max_length: int = Field(512, ge=8)
    lora_rank: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    lora_target_modules: list[str] | None = None
