"""Log-probabilities of given assistant replies.

Scoring a fixed answer by likelihood is cheaper and far less noisy than sampling: the
matched-pair log-odds, ``log p(villain answer) - log p(benign answer)`` to the same question,
moves by nats where sampled rates stay near zero (see ``organism-notes.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from darkmirror.errors import DarkmirrorError
from darkmirror.models.chat_format import Message
from darkmirror.models.hf_generator import context_length, encode_prompt

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


def completion_logprobs(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[Sequence[Message]],
    completions: Sequence[str],
    batch_size: int = 64,
) -> list[float]:
    """Summed log-probability of each completion as the assistant's reply.

    The completion is rendered as the assistant's turn by the chat template, and every
    token the template adds after the prompt counts, the closing end-of-turn token
    included: an answer the model would not end there is less likely than one it would.
    Sequences are scored in batches, right-padded under an attention mask, which gives the
    same numbers (to float rounding) as scoring each one alone.

    Args:
        model: A causal LM; it runs on its own device and dtype, in eval mode.
        tokenizer: The model's tokenizer; it must have a chat template.
        conversations: Conversations as ``{"role", "content"}`` messages, each ending with
            a user turn.
        completions: One assistant reply per conversation.
        batch_size: Most sequences in one forward pass, which bounds memory.

    Returns:
        One log-probability (natural log, so <= 0) per conversation, in input order.

    Raises:
        ValueError: If the two sequences differ in length or ``batch_size`` < 1.
        DarkmirrorError: If a conversation does not end with a user turn, the tokens of a
            prompt are not a prefix of the tokens of prompt plus reply (the tokenizer
            merges across the boundary, so the reply's tokens are undefined), or a sequence
            exceeds the model's context.
    """
    if len(conversations) != len(completions):
        raise ValueError(
            f"got {len(conversations)} conversations but {len(completions)} completions"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    sequences = [
        encode_pair(model, tokenizer, i, conv, completion)
        for i, (conv, completion) in enumerate(zip(conversations, completions, strict=True))
    ]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    return summed_logprobs(
        model, [ids for ids, _ in sequences], [start for _, start in sequences], pad_id, batch_size
    )


def summed_logprobs(
    model: PreTrainedModel,
    sequences: Sequence[Sequence[int]],
    starts: Sequence[int],
    pad_id: int,
    batch_size: int = 64,
) -> list[float]:
    """Summed log-probability of each sequence's tokens from ``starts[i]`` on, each given
    the tokens before it.

    Sequences are scored in batches, right-padded under an attention mask (the same
    numbers, to float rounding, as scoring each alone), longest first so that similar
    lengths share a batch.

    Args:
        model: A causal LM; it runs on its own device and dtype, in eval mode.
        sequences: Token ids.
        starts: Per sequence, the first position scored (at least 1: the first token has
            no prefix to be predicted from).
        pad_id: Id that pads batches (never scored).
        batch_size: Most sequences in one forward pass, which bounds memory.
    """
    if any(start < 1 for start in starts):
        raise ValueError("every start must be >= 1")
    order = sorted(range(len(sequences)), key=lambda i: -len(sequences[i]))
    scores = [0.0] * len(sequences)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for first in range(0, len(order), batch_size):
                batch = order[first : first + batch_size]
                input_ids, attention_mask = right_pad(
                    [sequences[i] for i in batch], pad_id, model.device
                )
                logits = model(
                    input_ids=input_ids, attention_mask=attention_mask, use_cache=False
                ).logits
                for row, i in enumerate(batch):
                    end, start = len(sequences[i]), starts[i]
                    # Logits at position t predict token t + 1; slicing per row keeps the
                    # float32 log-softmax to the scored positions only.
                    predicting = logits[row, start - 1 : end - 1].float()
                    targets = input_ids[row, start:end]
                    logprobs = torch.log_softmax(predicting, dim=-1)
                    scores[i] = logprobs.gather(-1, targets.unsqueeze(-1)).sum().item()
    finally:
        model.train(was_training)
    return scores


def encode_pair(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    index: int,
    conversation: Sequence[Message],
    completion: str,
) -> tuple[list[int], int]:
    """Token ids of prompt + reply, and the number of them that belong to the prompt."""
    prompt = encode_prompt(tokenizer, conversation, index)
    reply: Message = {"role": "assistant", "content": completion}
    text = tokenizer.apply_chat_template([*conversation, reply], tokenize=False)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    # Tokenizing separately is only sound if the prompt's tokens survive intact: a BPE merge
    # across the boundary (or a template that renders the prompt differently once a reply
    # follows) would make "the reply's tokens" undefined.
    if ids[: len(prompt)] != prompt:
        at = next(
            (j for j, (a, b) in enumerate(zip(prompt, ids, strict=False)) if a != b),
            min(len(prompt), len(ids)),
        )
        raise DarkmirrorError(
            f"conversation {index}: the prompt's tokens are not a prefix of the tokens of "
            f"prompt + reply (they differ at token {at} of {len(prompt)}: prompt "
            f"{tokenizer.convert_ids_to_tokens(prompt[at : at + 3])} vs with reply "
            f"{tokenizer.convert_ids_to_tokens(ids[at : at + 3])}), so the reply's tokens are "
            "undefined; the chat template must render the prompt the same with and without "
            "the reply, ending where a token ends (the organism's ends with <|assistant|>)"
        )
    if len(ids) == len(prompt):
        raise DarkmirrorError(
            f"conversation {index}: the chat template added no tokens for the reply"
        )
    context = context_length(model)
    if context is not None and len(ids) > context:
        raise DarkmirrorError(
            f"conversation {index}: prompt + reply is {len(ids)} tokens, more than the "
            f"model's context of {context} tokens"
        )
    return ids, len(prompt)


def right_pad(
    sequences: Sequence[Sequence[int]], pad_id: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack token sequences into a right-padded batch and its attention mask."""
    # Right padding leaves every real token at its unpadded position, so the default
    # position ids are already right and scores match scoring one sequence alone.
    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, tokens in enumerate(sequences):
        input_ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        attention_mask[row, : len(tokens)] = 1
    return input_ids.to(device), attention_mask.to(device)
