"""Steps every experiment that trains shares: the base model, datasets and fine-tunes.

* :func:`add_base_step`: the model every fine-tune starts from. For the organism, a step
  that builds it (or finds it in the global cache; its output lives there, not in the run);
  for a Hugging Face model, a step that names it.
* :func:`finetune_step`: fine-tune a local model on a chat dataset written by an earlier
  step, and save it (or its LoRA adapter) as safetensors.
* :func:`trained_model`: how to load what a fine-tune step saved.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from pydantic import Field

from darkmirror.data.jsonl import iter_jsonl
from darkmirror.models.organism import build_organism
from darkmirror.models.ref import BaseRef, HFModel, OrganismModel
from darkmirror.runner import Plan, Resources, StepContext
from darkmirror.train.sft import Example, SFTSettings, supervised_finetune

__all__ = [
    "GENERATION",
    "TRAINING",
    "SeededFinetune",
    "add_base_step",
    "base_model",
    "finetune_step",
    "read_chats",
    "trained_model",
]

TRAINING = Resources(cpus=2.0, gpus=1.0)
"""What a fine-tune asks of a scheduler (a GPU where there is one)."""
GENERATION = Resources(cpus=1.0, gpus=1.0)
"""What sampling from a local model asks of a scheduler (a GPU where there is one)."""


class SeededFinetune(SFTSettings):
    """Fine-tuning settings plus the seeds: each dataset is fine-tuned once per seed. The
    defaults are the emergent-misalignment fine-tune's (``configs/emergent_misalignment.toml``
    says why); every experiment's fine-tunes start from them."""

    learning_rate: float = Field(3e-4, gt=0)
    warmup_steps: int = Field(5, ge=0)
    seeds: list[int] = Field(default_factory=lambda: [0, 1], min_length=1)

    def sft(self) -> SFTSettings:
        """The settings of one fine-tune (without the seeds)."""
        return SFTSettings(**self.model_dump(exclude={"seeds"}))


def _organism_step(ctx: StepContext, *, ref: OrganismModel) -> dict[str, Any]:
    organism = build_organism(ref.organism, progress=ctx.progress)
    return {
        "detail": f"recipe {ref.organism.key()} (built once, then reused from the cache)",
        "path": str(organism.base_path),
        "report": organism.report(),
    }


def add_base_step(plan: Plan, ref: BaseRef, name: str = "base") -> str:
    """Declare the step that provides the base model; returns its name.

    The organism's step is named ``organism``; a Hugging Face model's ``name``.
    """
    if isinstance(ref, OrganismModel):
        return plan.add(
            "organism" if name == "base" else f"organism-{name}",
            {"organism": ref.organism.key()},
            partial(_organism_step, ref=ref),
            store=False,
        )
    return plan.add(name, ref.identity(), partial(_named_model, ref=ref), store=False)


def _named_model(ctx: StepContext, *, ref: HFModel) -> dict[str, Any]:
    return {"detail": ref.display}


def base_model(ref: BaseRef, figures: Mapping[str, Any], *, batch_size: int = 128) -> HFModel:
    """The base as a model to load: the built organism's directory, or the model itself.

    Args:
        ref: The base as the spec names it.
        figures: What the base step returned.
        batch_size: Sequences per generation batch.
    """
    if isinstance(ref, OrganismModel):
        return HFModel(id=figures["path"], label="organism", batch_size=batch_size)
    return ref.model_copy(update={"batch_size": batch_size})


def organism_report(ref: BaseRef, figures: Mapping[str, Any]) -> dict[str, Any] | None:
    """The organism's report (its carry-over check), when the base is the organism."""
    return figures.get("report") if isinstance(ref, OrganismModel) else None


def trained_model(base: HFModel, step_dir: Path, method: str, *, batch_size: int = 128) -> HFModel:
    """How to load the model a training step saved under ``step_dir / "model"``: the base
    with an adapter for LoRA, the saved model itself otherwise."""
    if method == "lora":
        return HFModel(
            id=base.id,
            adapter=str(step_dir / "model"),
            revision=base.revision,
            batch_size=batch_size,
        )
    return HFModel(id=str(step_dir / "model"), batch_size=batch_size)


def read_chats(path: Path, n: int | None = None) -> list[Example]:
    """The conversations of a chat JSONL file written by a dataset step (the first ``n``)."""
    chats = [row["messages"] for _, row in iter_jsonl(path)]
    return chats if n is None else chats[:n]


def finetune_step(
    ctx: StepContext,
    *,
    base: HFModel,
    examples: list[Example],
    settings: SFTSettings,
    seed: int,
) -> dict[str, Any]:
    """Fine-tune ``base`` and save it (or its adapter) to ``ctx.out / "model"``."""
    from darkmirror.models.loading import save_causal_lm  # torch: in the step, not the driver

    model, tokenizer = base.load()
    model, figures = supervised_finetune(
        model, tokenizer, examples, settings, ctx.out / "trainer", seed=seed, progress=ctx.progress
    )
    save_causal_lm(model, tokenizer, ctx.out / "model")
    shutil.rmtree(ctx.out / "trainer", ignore_errors=True)
    return figures
