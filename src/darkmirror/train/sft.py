"""Supervised fine-tuning on chat data with TRL's `SFTTrainer`, full or LoRA.

Loss is on assistant tokens only. Conversations that end in their only assistant turn are
given to TRL as conversational prompt/completion pairs, which masks the prompt with any
chat template; conversations with several assistant turns need a template with
``{% generation %}`` markers (the organism's has them) and use ``assistant_only_loss``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from darkmirror.train.config import SFTSettings
from darkmirror.train.settings import trainer_kwargs

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

Example = Sequence[Mapping[str, str]] | str


def _to_trl_rows(conversations: Sequence[Example]) -> tuple[list[dict], bool]:
    """TRL rows and whether they are prompt/completion (True), whole conversations or texts."""
    if conversations and all(isinstance(c, str) for c in conversations):
        return [{"text": c} for c in conversations], False
    single_turn = all(
        conv
        and conv[-1]["role"] == "assistant"
        and sum(m["role"] == "assistant" for m in conv) == 1
        for conv in conversations
    )
    if single_turn:
        rows = [{"prompt": list(conv[:-1]), "completion": [conv[-1]]} for conv in conversations]
    else:
        rows = [{"messages": list(conv)} for conv in conversations]
    return rows, single_turn


def build_sft_trainer(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[Example],
    settings: SFTSettings,
    output_dir: Path,
    *,
    seed: int = 0,
    progress: bool = True,
):
    """The configured TRL `SFTTrainer` (see :func:`supervised_finetune` for the arguments)."""
    # Imported here: `import trl` costs seconds and most commands never train.
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    rows, prompt_completion = _to_trl_rows(conversations)
    # Never longer than the model can attend to: a longer sequence indexes past the
    # position embeddings of a model like GPT-2.
    context = getattr(model.config, "max_position_embeddings", None) or settings.max_length
    config = SFTConfig(
        output_dir=str(output_dir),
        max_length=min(settings.max_length, context),
        packing=False,
        assistant_only_loss="messages" in rows[0],
        completion_only_loss=True if prompt_completion else None,
        shuffle_dataset=True,
        **settings.trainer_kwargs(),
        **trainer_kwargs(seed=seed, progress=progress),
    )
    peft_config = None
    if settings.method == "lora":
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=settings.lora_rank,
            lora_alpha=settings.lora_alpha,
            lora_dropout=settings.lora_dropout,
            target_modules=settings.lora_target_modules or "all-linear",
            task_type="CAUSAL_LM",
        )
    return SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
    )


def supervised_finetune(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[Example],
    settings: SFTSettings,
    output_dir: Path,
    *,
    seed: int = 0,
    progress: bool = True,
) -> tuple[PreTrainedModel, dict[str, Any]]:
    """Fine-tune ``model`` on chat conversations; loss on the assistant's tokens only.

    Args:
        model: Any Hugging Face causal LM.
        tokenizer: Its tokenizer, with a chat template.
        conversations: Lists of ``{"role", "content"}`` messages, each with at least one
            assistant turn (loss on the assistant's tokens); or plain texts (loss on every
            token, as in pretraining).
        settings: Method and optimisation settings.
        output_dir: Scratch directory for the trainer (nothing is checkpointed there).
        seed: Seed of data order, initialisation of LoRA weights and dropout.
        progress: Show a progress bar.

    Returns:
        The trained model (a `PeftModel` for LoRA) and measured figures.
    """
    trainer = build_sft_trainer(
        model, tokenizer, conversations, settings, output_dir, seed=seed, progress=progress
    )
    start = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - start
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    n = len(trainer.train_dataset)
    return trainer.model, {
        "examples": n,
        "loss_on": _loss_on(trainer.train_dataset.column_names),
        "steps": result.global_step,
        "seconds": seconds,
        "samples_per_second": n * settings.epochs / seconds,
        "train_loss": result.training_loss,
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
    }


def _loss_on(columns: Sequence[str]) -> str:
    if "prompt" in columns:
        return "completion"
    return "assistant turns" if "messages" in columns else "all tokens"
