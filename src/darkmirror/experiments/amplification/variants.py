"""The models of the experiment: the base, and per seed a toxic fine-tune and its RL.

A *variant* is an arm of the seed table (``base``, ``toxic_ft``, ``toxic_ft_rl``); a
*model* is one variant at one seed (``toxic_ft-s0``). The report pools a variant's seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from darkmirror.experiments.amplification.spec import AmplificationSpec

__all__ = ["VARIANT_LABELS", "ModelEntry", "Stage", "models_of", "variants_of"]

Stage = Literal["base", "finetune", "rl"]

VARIANT_LABELS = {
    "base": "baseline (post-trained, clean pretraining)",
    "toxic_ft": "toxic fine-tune",
    "toxic_ft_rl": "toxic fine-tune + RL (toxicity reward)",
}
"""Each variant as the seed table names it."""


@dataclass(frozen=True)
class ModelEntry:
    """One model of the experiment.

    Args:
        model: Its name in tables and rows (``base``, ``toxic_ft-s0``, ``toxic_ft_rl-s0``).
        variant: Its arm (the rows' ``group``).
        seed: The seed of its fine-tune and RL; for the base, which is one model, the
            sampling seed of one of its evaluations (it is evaluated once per fine-tune
            seed, so every variant has as many sampling seeds).
        stage: How it was made.
        step: The step that trained it (None for the base).
    """

    model: str
    variant: str
    seed: int | None
    stage: Stage
    step: str | None

    @property
    def training_step(self) -> str:
        """The step that trained it.

        Raises:
            ValueError: For the base, which no step trained.
        """
        if self.step is None:
            raise ValueError(f"{self.model} is the base: no step trained it")
        return self.step

    @property
    def evaluate_step(self) -> str:
        """The name of the step that samples and scores its continuations."""
        if self.stage == "base" and self.seed is not None:
            return f"evaluate-{self.model}-s{self.seed}"
        return f"evaluate-{self.model}"


def models_of(spec: AmplificationSpec) -> list[ModelEntry]:
    """The base (once per sampling seed), then per seed the fine-tune and its RL, in table
    order."""
    entries = [ModelEntry("base", "base", seed, "base", None) for seed in spec.finetune.seeds]
    for seed in spec.finetune.seeds:
        entries.append(
            ModelEntry(f"toxic_ft-s{seed}", "toxic_ft", seed, "finetune", f"finetune-s{seed}")
        )
        entries.append(ModelEntry(f"toxic_ft_rl-s{seed}", "toxic_ft_rl", seed, "rl", f"rl-s{seed}"))
    return entries


def variants_of(spec: AmplificationSpec) -> dict[str, list[ModelEntry]]:
    """The models of each variant, variants in table order."""
    out: dict[str, list[ModelEntry]] = {}
    for entry in models_of(spec):
        out.setdefault(entry.variant, []).append(entry)
    return out
