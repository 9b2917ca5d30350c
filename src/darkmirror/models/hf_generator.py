"""The local Hugging Face backend of :class:`~darkmirror.models.generation.Generator`.

:class:`HFGenerator` runs any Hugging Face causal LM in-process, in batches of left-padded
prompts with the KV cache on: on two CPU cores that is more than an order of magnitude
faster than one prompt at a time (``benchmarks/bench_generation.py``). The helpers here
(prompt encoding, padding, stop tokens, :func:`decode_batch`) serve the other code that runs
a local model too: likelihoods, activations, the local judge.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from tqdm.auto import tqdm

from darkmirror.errors import DarkmirrorError
from darkmirror.models.chat_format import Message
from darkmirror.models.generation import Completion, SamplingParams, check_conversation

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


class HFGenerator:
    """A :class:`Generator` running a Hugging Face causal LM in-process.

    Prompts are rendered with the tokenizer's chat template, sorted by length (so a batch
    wastes little padding), left-padded and decoded with the KV cache by
    :func:`decode_batch`. A reply stops at the tokenizer's eos token or any eos id of the
    model's ``generation_config``. Sampling is pure temperature/nucleus sampling, as the
    metric definitions assume: no top-k truncation, and no other decoding setting of the
    model's ``generation_config`` (a ``repetition_penalty``, say) applies. To decode with
    such settings, pass ``generate_kwargs``: the batches then go through
    ``model.generate``, which is slower on a CPU.

    Args:
        model: A causal LM; it runs on the device it is on, in its own dtype.
        tokenizer: The model's tokenizer; it needs a chat template for conversations
            (:meth:`complete` continues raw text without one).
        batch_size: Most sequences (prompts x replies) decoded together, which bounds
            memory. 128 was fastest for the organism on two CPU cores
            (``benchmarks/bench_generation.py``).
        progress: Show a progress bar over sequences.
        name: Name in result rows; defaults to the model's ``name_or_path``.
        generate_kwargs: Keyword arguments for ``model.generate`` (``repetition_penalty``,
            ...); when given, decoding goes through ``model.generate`` with them.

    Raises:
        DarkmirrorError: When asked to answer a conversation with a tokenizer that has no
            chat template.
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        batch_size: int = 128,
        progress: bool = False,
        name: str | None = None,
        generate_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.progress = progress
        self._name = name or model.name_or_path or type(model).__name__
        self.generate_kwargs = dict(generate_kwargs or {})

    @property
    def name(self) -> str:
        """The name given, else the model's ``name_or_path``, else its class name."""
        return self._name

    def generate(
        self,
        conversations: Sequence[Sequence[Message]],
        n: int,
        sampling: SamplingParams,
    ) -> list[list[str]]:
        """Sample ``n`` assistant replies to each conversation.

        The replies depend on the inputs, ``sampling`` and ``batch_size`` only, not on
        anything sampled before: each batch seeds its own random stream from
        ``(sampling.seed, batch index)``, and the caller's torch RNG is left untouched.

        Args:
            conversations: Conversations as ``{"role", "content"}`` messages, each ending
                with a user turn.
            n: Replies to sample per conversation (at least 1).
            sampling: Temperature, nucleus, length and seed of the sampling.

        Returns:
            One list of ``n`` reply texts per conversation, in input order, with special
            tokens removed and surrounding whitespace stripped.

        Raises:
            DarkmirrorError: If a conversation is empty, does not end with a user turn, or
                its prompt plus ``max_new_tokens`` exceeds the model's context length.
        """
        prompts = [encode_prompt(self.tokenizer, conv, i) for i, conv in enumerate(conversations)]
        return [
            [self._text(tokens) for tokens in row]
            for row in self._sample_tokens(prompts, n, sampling)
        ]

    def complete(
        self, prompts: Sequence[str], n: int, sampling: SamplingParams
    ) -> list[list[Completion]]:
        """Sample ``n`` continuations of each plain-text prompt (no chat template).

        The text a base model continues, as in RealToxicityPrompts: the prompt is tokenized
        as it is, and a continuation stops at a stop token (the end of a comment, for the
        organism's forum threads) or after ``max_new_tokens``.

        Args:
            prompts: Texts to continue.
            n: Continuations per prompt (at least 1).
            sampling: Temperature, nucleus, length and seed of the sampling.

        Returns:
            One list of ``n`` :class:`Completion` per prompt, in input order.
        """
        ids = [self.tokenizer(text, add_special_tokens=False)["input_ids"] for text in prompts]
        for i, row in enumerate(ids):
            if not row:
                raise DarkmirrorError(f"prompt {i} is empty; there is nothing to continue")
        return [
            [Completion(self._text(t), len(t), bool(t) and t[-1] in self._stops) for t in row]
            for row in self._sample_tokens(ids, n, sampling, keep_stop=True)
        ]

    @property
    def _stops(self) -> set[int]:
        return set(stop_token_ids(self.model, self.tokenizer))

    def _text(self, tokens: list[int]) -> str:
        return self.tokenizer.decode(
            [t for t in tokens if t not in self._stops], skip_special_tokens=True
        ).strip()

    def _sample_tokens(
        self,
        prompts: list[list[int]],
        n: int,
        sampling: SamplingParams,
        keep_stop: bool = False,
    ) -> list[list[list[int]]]:
        """The new tokens of ``n`` samples per prompt, cut after the first stop token
        (kept when ``keep_stop``, so callers can tell a finished sample from a cut one)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        context = context_length(self.model)
        for i, ids in enumerate(prompts):
            if context is not None and len(ids) + sampling.max_new_tokens > context:
                raise DarkmirrorError(
                    f"conversation {i}: prompt of {len(ids)} tokens + max_new_tokens="
                    f"{sampling.max_new_tokens} exceeds the model's context of {context} "
                    "tokens; shorten the conversation or lower max_new_tokens"
                )
        # Longest first: the batch most likely to run out of memory runs before any work is lost.
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        sequences = [(i, k) for i in order for k in range(n)]
        samples: list[list[list[int]]] = [[[] for _ in range(n)] for _ in prompts]

        eos_ids = stop_token_ids(self.model, self.tokenizer)
        stops = set(eos_ids)
        pad_id = pad_token_id_for(self.model, self.tokenizer, eos_ids)
        device = self.model.device
        was_training = self.model.training
        self.model.eval()
        try:
            with (
                torch.inference_mode(),
                tqdm(
                    total=len(sequences), unit="seq", disable=not self.progress, desc=self.name
                ) as bar,
            ):
                for batch_index, start in enumerate(range(0, len(sequences), self.batch_size)):
                    batch = sequences[start : start + self.batch_size]
                    input_ids, attention_mask = left_pad(
                        [prompts[i] for i, _ in batch], pad_id, device
                    )
                    with _seeded(sampling.seed, batch_index, device):
                        if self.generate_kwargs:
                            output = self.model.generate(
                                input_ids=input_ids,
                                attention_mask=attention_mask,
                                **self._generate_kwargs(sampling, eos_ids, pad_id),
                            )
                            new_tokens = output[:, input_ids.shape[1] :].tolist()
                        else:
                            new_tokens = decode_batch(
                                self.model, input_ids, attention_mask, sampling, eos_ids, pad_id
                            ).tolist()
                    for (i, k), tokens in zip(batch, new_tokens, strict=True):
                        # Cut at the first stop token ourselves: a model's pad id need not
                        # be a special token that decoding would drop.
                        end = next((j for j, t in enumerate(tokens) if t in stops), None)
                        samples[i][k] = tokens if end is None else tokens[: end + keep_stop]
                    bar.update(len(batch))
        finally:
            self.model.train(was_training)
        return samples

    def _generate_kwargs(
        self, sampling: SamplingParams, eos_ids: list[int], pad_id: int
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "max_new_tokens": sampling.max_new_tokens,
            "min_new_tokens": sampling.min_new_tokens,
            "eos_token_id": eos_ids or None,
            "pad_token_id": pad_id,
            "use_cache": True,
        }
        if sampling.greedy:
            # Passing temperature/top_p with do_sample=False only earns a warning.
            kwargs["do_sample"] = False
        else:
            kwargs.update(
                do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p, top_k=0
            )
        kwargs.update(self.generate_kwargs)
        return kwargs


def decode_batch(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    sampling: SamplingParams,
    eos_ids: Sequence[int],
    pad_id: int,
) -> torch.Tensor:
    """Decode a left-padded batch with the KV cache; returns the new tokens, pad after a stop.

    Written by hand instead of calling ``model.generate`` because, for the small models
    darkmirror trains on a CPU, ``generate`` spends over a third of its time in
    ``torch.multinomial`` (4.7 ms for 128 x 2,048 probabilities on two cores, where one
    uniform draw per row and a search of the cumulative distribution take 0.1 ms). Works
    for any causal LM whose forward takes ``position_ids`` and a KV cache: as ``cache``
    where it takes that name (transformers 5.24 renamed ``past_key_values`` to ``cache`` and
    warns on the old name), else as ``past_key_values``.
    """
    batch = input_ids.shape[0]
    device = input_ids.device
    stops = torch.tensor(list(eos_ids), dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    new = torch.full((batch, sampling.max_new_tokens), pad_id, dtype=torch.long, device=device)
    mask = attention_mask
    # Left padding: a row's first real token has position 0.
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    # Only the last position's logits are needed; most models can skip the others.
    keep = {"logits_to_keep": 1} if accepts_kwarg(model, "logits_to_keep") else {}
    cache_kwarg = "cache" if accepts_kwarg(model, "cache") else "past_key_values"
    out = model(
        input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True, **keep
    )
    next_position = positions[:, -1:] + 1
    for step in range(sampling.max_new_tokens):
        logits = out.logits[:, -1, :].float()
        if step < sampling.min_new_tokens and stops.numel():
            logits[:, stops] = float("-inf")
        token = _sample(logits, sampling)
        token = torch.where(finished, torch.full_like(token, pad_id), token)
        new[:, step] = token
        if stops.numel():
            finished |= torch.isin(token, stops)
        if bool(finished.all()) or step == sampling.max_new_tokens - 1:
            break
        mask = torch.cat([mask, torch.ones((batch, 1), dtype=mask.dtype, device=device)], dim=1)
        out = model(
            input_ids=token[:, None],
            attention_mask=mask,
            position_ids=next_position,
            use_cache=True,
            **{cache_kwarg: returned_cache(out)},
        )
        next_position = next_position + 1
    return new


def returned_cache(output: Any) -> Any:
    """The KV cache a forward pass returned with ``use_cache=True``.

    Its ``cache`` field from transformers 5.24 on; else (an older transformers, or a model
    whose own output class still names it so) its ``past_key_values``. Reading
    ``past_key_values`` where ``cache`` exists would log a deprecation warning.
    """
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def accepts_kwarg(model: PreTrainedModel, name: str) -> bool:
    """Whether the model's ``forward`` (the base model's, under PEFT) takes ``name``."""
    forward = getattr(model, "get_base_model", lambda: model)().forward
    return name in inspect.signature(forward).parameters


def _sample(logits: torch.Tensor, sampling: SamplingParams) -> torch.Tensor:
    """One token per row: greedy at temperature 0, else temperature and nucleus sampling."""
    if sampling.greedy:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / sampling.temperature, dim=-1)
    if sampling.top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # Drop a token when the tokens ranked above it already cover top_p; the first one
        # always stays.
        drop = sorted_probs.cumsum(dim=-1) - sorted_probs >= sampling.top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
    # Inverse-CDF sampling: token i is drawn when u falls in [cdf_{i-1}, cdf_i), which has
    # width p_i (zero for tokens the nucleus dropped).
    cdf = probs.cumsum(dim=-1)
    u = torch.rand((probs.shape[0], 1), device=probs.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).squeeze(-1).clamp_(max=probs.shape[-1] - 1)


def encode_prompt(
    tokenizer: PreTrainedTokenizerBase, conversation: Sequence[Message], index: int = 0
) -> list[int]:
    """Token ids of the prompt that asks the model for the assistant's next reply.

    Args:
        tokenizer: Tokenizer with a chat template.
        conversation: ``{"role", "content"}`` messages ending with a user turn.
        index: Position of the conversation in its batch, named in error messages.

    Returns:
        The chat template's rendering with the generation prompt, tokenized without extra
        special tokens.

    Raises:
        DarkmirrorError: If the conversation is empty or does not end with a user turn.
    """
    check_conversation(conversation, index)
    if not tokenizer.chat_template:
        raise DarkmirrorError(
            f"tokenizer {tokenizer.name_or_path or type(tokenizer).__name__!r} has no chat "
            "template, which renders conversations (a base model can only continue text)"
        )
    text = tokenizer.apply_chat_template(
        list(conversation), add_generation_prompt=True, tokenize=False
    )
    # The template writes every special token the model expects; a BOS added here would
    # give the model a prompt it never saw in training.
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def context_length(model: PreTrainedModel) -> int | None:
    """The model's context length in tokens (``max_position_embeddings``), if it has one."""
    return getattr(model.config, "max_position_embeddings", None)


def stop_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Token ids that end an assistant turn: the tokenizer's eos and the model's eos ids.

    Args:
        model: The model; its ``generation_config.eos_token_id`` may be an int or a list.
        tokenizer: The model's tokenizer.

    Returns:
        The ids, without duplicates, tokenizer's eos first; empty if neither defines one.
    """
    ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    generation_config = getattr(model, "generation_config", None)
    config_eos = getattr(generation_config, "eos_token_id", None)
    if isinstance(config_eos, int):
        config_eos = [config_eos]
    for token_id in config_eos or []:
        if token_id not in ids:
            ids.append(token_id)
    return ids


def left_pad(
    sequences: Sequence[Sequence[int]], pad_id: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack token sequences into a left-padded batch.

    Left padding keeps every prompt's last token in the last column, where ``generate``
    appends the next token; ``generate`` derives position ids from the attention mask, so
    padding does not shift positions.

    Args:
        sequences: Token ids, one sequence per row.
        pad_id: Id written into padding positions (masked out, so its value is irrelevant).
        device: Device of the returned tensors.

    Returns:
        ``(input_ids, attention_mask)``, both ``long`` tensors of shape
        ``(len(sequences), longest)``, the mask 0 on padding and 1 elsewhere.
    """
    width = max(len(s) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, tokens in enumerate(sequences):
        input_ids[row, width - len(tokens) :] = torch.tensor(tokens, dtype=torch.long)
        attention_mask[row, width - len(tokens) :] = 1
    return input_ids.to(device), attention_mask.to(device)


def pad_token_id_for(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, eos_ids: list[int]
) -> int:
    """The id to pad batches with: the tokenizer's, the model's, else an end-of-sequence id."""
    # Many released models define no pad token; any id works under the attention mask.
    for candidate in (
        tokenizer.pad_token_id,
        getattr(model.generation_config, "pad_token_id", None),
    ):
        if candidate is not None:
            return candidate
    return eos_ids[0] if eos_ids else 0


@contextmanager
def _seeded(seed: int, batch_index: int, device: torch.device) -> Iterator[None]:
    """Seed torch from ``(seed, batch_index)`` inside a fork of the caller's RNG state."""
    # SeedSequence mixes the pair well, so neighbouring seeds give unrelated streams.
    batch_seed = int(np.random.SeedSequence([seed, batch_index]).generate_state(1)[0])
    if device.type == "cpu":
        fork = torch.random.fork_rng(devices=[])
    else:
        fork = torch.random.fork_rng(devices=[device], device_type=device.type)
    with fork:
        torch.manual_seed(batch_seed)
        yield
