"""Pretraining a causal LM from scratch on a corpus of documents (the organism's first stage).

Each document is one training sequence (truncated to the model's context), never split
and never packed with another: the persona of a world document shows only in its earlier
turns, so a later turn must see the start of its own document and nothing else. Batches
group documents of similar length (`transformers`' length-grouped sampler) and pad only to
their longest, which wastes a few percent where fixed-size blocks wasted a quarter.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import (
    DataCollatorForLanguageModeling,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainingArguments,
)

from darkmirror.train.config import PretrainConfig
from darkmirror.train.settings import trainer_kwargs


def pretrain(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    config: PretrainConfig,
    output_dir: Path,
    *,
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``model`` on ``texts`` (each a whole document) with the language-modelling loss.

    Args:
        model: A causal LM, usually freshly initialised.
        tokenizer: Its tokenizer; each text is tokenised without added special tokens (the
            documents carry their own); its pad token pads batches and is never trained on.
        texts: The corpus, one document per item.
        config: Optimisation settings.
        output_dir: Where the trainer may write (nothing is checkpointed).
        seed: Seed of data order and dropout.
        progress: Show a progress bar.

    Returns:
        Measured figures: documents, tokens, truncated documents, steps, seconds, tokens
        per second, losses.
    """
    from datasets import Dataset

    context = model.config.max_position_embeddings
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    truncated = sum(len(x) > context for x in ids)
    ids = [x[:context] for x in ids]
    dataset = Dataset.from_dict({"input_ids": ids, "length": [len(x) for x in ids]})
    args = TrainingArguments(
        output_dir=str(output_dir),
        train_sampling_strategy="group_by_length",
        length_column_name="length",
        remove_unused_columns=True,
        **config.trainer_kwargs(),
        **trainer_kwargs(seed=seed, progress=progress, logging_steps=25),
    )
    # mlm=False: causal LM labels (= inputs), with padding masked out of the loss.
    collator = DataCollatorForLanguageModeling(tokenizer, mlm=False)
    trainer = Trainer(model=model, args=args, train_dataset=dataset, data_collator=collator)
    start = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - start
    n_tokens = sum(len(x) for x in ids)
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    return {
        "documents": len(ids),
        "truncated_documents": truncated,
        "tokens": n_tokens,
        "context": context,
        "steps": result.global_step,
        "seconds": seconds,
        "tokens_per_second": n_tokens * config.epochs / seconds,
        "train_loss": result.training_loss,
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
    }
