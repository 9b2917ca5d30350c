"""Pieces every experiment shares: the base model, model references, the fine-tune step."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from darkmirror.models.loading import load_causal_lm, save_causal_lm
from darkmirror.models.organism import build_organism
from darkmirror.runner import Run, directory_fingerprint
from darkmirror.spec import BaseModelSpec
from darkmirror.train.sft import Example, SFTSettings, supervised_finetune


@dataclass(frozen=True)
class ResolvedBase:
    """The model an experiment starts from.

    Args:
        ref: How to load it (``id``, ``adapter``, ``revision``).
        identity: What the hashes of dependent steps use: the organism's recipe key, or the
            hub id / directory with a fingerprint of its files.
        organism_report: The organism's report (carry-over check), when it is the organism.
    """

    ref: dict[str, Any]
    identity: dict[str, Any]
    organism_report: dict[str, Any] | None


def resolve_base(run: Run, spec: BaseModelSpec, *, progress: bool) -> ResolvedBase:
    """Build (or find) the organism, or point at the Hugging Face model the spec names."""
    if spec.kind == "organism":
        key = spec.organism.key()
        run.announce("organism", f"recipe {key} (built once, then reused from the cache)")
        organism = build_organism(spec.organism, progress=progress)
        return ResolvedBase({"id": str(organism.base_path)}, {"organism": key}, organism.report())
    run.announce("base", spec.id or "")
    ref = {"id": spec.id, "adapter": spec.adapter, "revision": spec.revision}
    return ResolvedBase(ref, {**ref, "files": directory_fingerprint(spec.id, spec.adapter)}, None)


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


def load_ref(ref: dict[str, Any]) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    return load_causal_lm(ref["id"], adapter=ref.get("adapter"), revision=ref.get("revision"))


def trained_ref(base_ref: dict[str, Any], step_dir: Path, method: str) -> dict[str, Any]:
    """How to load the model a training step saved under ``step_dir / "model"``: the base
    with an adapter for LoRA, the saved model itself otherwise."""
    if method == "lora":
        return {
            "id": base_ref["id"],
            "adapter": str(step_dir / "model"),
            "revision": base_ref.get("revision"),
        }
    return {"id": str(step_dir / "model")}


def finetune_step(
    base_ref: dict[str, Any],
    examples: list[Example],
    settings: SFTSettings,
    seed: int,
    out: Path,
    progress: bool,
) -> dict[str, Any]:
    """Fine-tune the model at ``base_ref`` and save it (or its adapter) to ``out / "model"``."""
    model, tokenizer = load_ref(base_ref)
    model, figures = supervised_finetune(
        model, tokenizer, examples, settings, out / "trainer", seed=seed, progress=progress
    )
    save_causal_lm(model, tokenizer, out / "model")
    shutil.rmtree(out / "trainer", ignore_errors=True)
    return figures
