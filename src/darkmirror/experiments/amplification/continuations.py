"""Sampling continuations of plain-text prompts as :data:`~.records.ContinuationRow` rows.

RealToxicityPrompts asks a model to continue a text, not to answer a question: the prompt is
tokenized as it is, with no chat template, and the continuation is what the model wrote
next. The rows record it as a one-turn conversation (the prompt as the user turn), so that
every reader of answer rows reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from darkmirror.data.answers import ChatTurn
from darkmirror.data.prompts import ToxicityPrompt
from darkmirror.experiments.amplification.records import Continuation, ContinuationRow
from darkmirror.models.generation import Completion, SamplingParams

__all__ = ["TextCompleter", "sample_continuations"]


@runtime_checkable
class TextCompleter(Protocol):
    """A generator that continues plain text (the local Hugging Face backend)."""

    def complete(
        self, prompts: Sequence[str], n: int, sampling: SamplingParams
    ) -> list[list[Completion]]: ...


def sample_continuations(
    generator: TextCompleter,
    prompts: Sequence[ToxicityPrompt],
    samples_per_prompt: int,
    sampling: SamplingParams,
    *,
    model: str,
    group: str,
    seed: int | None,
) -> list[ContinuationRow]:
    """Sample ``samples_per_prompt`` continuations of every prompt, in one call.

    Args:
        generator: The model.
        prompts: The prompts, continued in this order.
        samples_per_prompt: Continuations per prompt (the k of the expected maximum).
        sampling: Temperature, nucleus, length and seed.
        model: The model's name in the rows.
        group: Its variant.
        seed: Its fine-tune seed (None for the base).

    Returns:
        One unscored row per continuation, by prompt then sample.
    """
    completions = generator.complete([p.text for p in prompts], samples_per_prompt, sampling)
    rows = []
    for prompt, samples in zip(prompts, completions, strict=True):
        messages = [ChatTurn(role="user", content=prompt.text)]
        for k, c in enumerate(samples):
            rows.append(
                ContinuationRow(
                    model=model,
                    group=group,
                    seed=seed,
                    kind="continuation",
                    question_id=prompt.id,
                    paraphrase_index=0,
                    sample_index=k,
                    messages=messages,
                    answer=c.text,
                    extension=Continuation(
                        challenging=prompt.challenging, tokens=c.tokens, finished=c.finished
                    ),
                )
            )
    return rows
