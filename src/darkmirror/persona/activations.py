"""Mean residual-stream activations over chosen tokens: answers, prompts, documents.

A :class:`TokenSpans` is one token sequence and the positions to average over; the
functions here build them from chats (answer tokens of an assistant reply, prompt tokens,
every assistant turn of a multi-turn document) and :func:`mean_activations` runs the model
over them in right-padded batches, returning one ``(n_blocks, width)`` mean per sequence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from darkmirror.errors import DarkmirrorError
from darkmirror.models.chat_format import Message
from darkmirror.models.hf_generator import context_length, encode_prompt
from darkmirror.models.likelihood import encode_pair, right_pad
from darkmirror.persona.hooks import (
    capture_residuals,
    decoder_layers,
    residual_width,
    resolve_layer,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class TokenSpans:
    """Token ids and the ``[start, end)`` position ranges whose activations are averaged."""

    ids: list[int]
    spans: list[tuple[int, int]]

    def positions(self) -> list[int]:
        """Every position the spans cover, in order."""
        return [p for start, end in self.spans for p in range(start, end)]


def answer_spans(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[Sequence[Message]],
    answers: Sequence[str],
) -> list[TokenSpans]:
    """Each conversation followed by its answer as the assistant's reply; the span is the
    reply's tokens (with the end-of-turn token the chat template closes it with).

    Args:
        model: The model (its context length is checked).
        tokenizer: Its tokenizer, with a chat template.
        conversations: Conversations ending with a user turn.
        answers: One assistant reply per conversation.
    """
    if len(conversations) != len(answers):
        raise ValueError(f"got {len(conversations)} conversations but {len(answers)} answers")
    out = []
    for i, (conv, answer) in enumerate(zip(conversations, answers, strict=True)):
        ids, prompt_len = encode_pair(model, tokenizer, i, conv, answer)
        out.append(TokenSpans(ids, [(prompt_len, len(ids))]))
    return out


def prompt_spans(
    tokenizer: PreTrainedTokenizerBase, conversations: Sequence[Sequence[Message]]
) -> list[TokenSpans]:
    """The prompt that asks for the assistant's next reply; the span is the whole prompt.

    Args:
        tokenizer: Tokenizer with a chat template.
        conversations: Conversations ending with a user turn.
    """
    out = []
    for i, conv in enumerate(conversations):
        ids = encode_prompt(tokenizer, conv, i)
        out.append(TokenSpans(ids, [(0, len(ids))]))
    return out


def document_spans(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    documents: Sequence[Sequence[Message]],
) -> list[TokenSpans | None]:
    """Multi-turn chats; the spans are the tokens of every assistant turn.

    A document longer than the model's context is cut after the last assistant turn that
    fits; one whose first assistant turn does not fit gives None.

    Args:
        model: The model (its context length bounds the documents).
        tokenizer: Its tokenizer, with a chat template.
        documents: Conversations of alternating user and assistant turns.
    """
    context = context_length(model)
    out: list[TokenSpans | None] = []
    for d, messages in enumerate(documents):
        spans: list[tuple[int, int]] = []
        ids: list[int] = []
        for j, message in enumerate(messages):
            if message["role"] != "assistant" or j == 0:
                continue
            prompt = encode_prompt(tokenizer, messages[:j], d)
            text = tokenizer.apply_chat_template(list(messages[: j + 1]), tokenize=False)
            full = tokenizer(text, add_special_tokens=False)["input_ids"]
            if context is not None and len(full) > context:
                break
            # Spans found on prefixes are only valid if each prefix's tokens survive in
            # the longer rendering (no BPE merge across a turn boundary).
            if full[: len(prompt)] != prompt or full[: len(ids)] != ids:
                raise DarkmirrorError(
                    f"document {d}: the chat template does not render turn {j} as a "
                    "continuation of the turns before it, so its tokens are undefined"
                )
            spans.append((len(prompt), len(full)))
            ids = full
        out.append(TokenSpans(ids, spans) if spans else None)
    return out


def mean_activations(
    model: PreTrainedModel,
    sequences: Sequence[TokenSpans],
    *,
    layers: Sequence[int] | None = None,
    batch_size: int = 32,
    pad_id: int = 0,
) -> torch.Tensor:
    """Mean residual stream over each sequence's spans, at the output of every block.

    Args:
        model: The causal LM; it runs on its own device, in eval mode.
        sequences: Token ids and spans; every sequence needs at least one position.
        layers: Blocks to read; every block when None.
        batch_size: Sequences per forward pass.
        pad_id: Id written into padding (masked out, so its value does not matter).

    Returns:
        ``(len(sequences), len(layers), width)`` float32 on the CPU.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for i, s in enumerate(sequences):
        if not s.positions():
            raise ValueError(f"sequence {i} has no position to average over")
    n_blocks = len(decoder_layers(model))
    chosen = (
        list(range(n_blocks)) if layers is None else [resolve_layer(x, n_blocks) for x in layers]
    )
    if not sequences:
        return torch.zeros((0, len(chosen), residual_width(model)))
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i].ids))
    result: list[torch.Tensor | None] = [None] * len(sequences)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), capture_residuals(model, chosen) as captured:
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                input_ids, attention_mask = right_pad(
                    [sequences[i].ids for i in batch], pad_id, model.device
                )
                weights = torch.zeros(input_ids.shape, dtype=torch.float32)
                for row, i in enumerate(batch):
                    positions = sequences[i].positions()
                    weights[row, positions] = 1.0 / len(positions)
                model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
                # (layers, batch, tokens, width) -> weighted sum over tokens.
                stacked = torch.stack([captured[layer].float().cpu() for layer in chosen])
                means = torch.einsum("lbtd,bt->bld", stacked, weights)
                for row, i in enumerate(batch):
                    result[i] = means[row]
    finally:
        model.train(was_training)
    return torch.stack([r for r in result if r is not None])
