"""The ``Generator`` interface that every generation backend implements.

A :class:`Generator` turns chat conversations into sampled assistant replies. Every
experiment samples through it, so the local model
(:class:`~darkmirror.models.hf_generator.HFGenerator`), vLLM and an OpenAI-compatible
endpoint are interchangeable. This module is backend-neutral and imports no torch, so that
code which never runs a local model (an OpenAI backend, a replay of recorded answers) does
not load it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from darkmirror.errors import DarkmirrorError
from darkmirror.models.chat_format import Message

__all__ = ["Completion", "Generator", "SamplingParams", "check_conversation"]


@dataclass(frozen=True)
class SamplingParams:
    """How to sample replies.

    Args:
        temperature: Softmax temperature; 0 means greedy decoding (the most likely token
            at each step, no randomness).
        top_p: Nucleus sampling: sample from the smallest set of tokens whose probability
            adds up to at least ``top_p``; 1.0 keeps the whole vocabulary. Ignored when
            ``temperature`` is 0.
        max_new_tokens: Most tokens generated per reply; a reply stops earlier at the end
            of the assistant's turn.
        seed: Seed of the sampling; with the same inputs and settings the same seed gives
            the same replies.
        min_new_tokens: No end of turn before this many tokens (benchmarks use it to
            compare like with like; backends without such an option ignore it).
    """

    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 64
    seed: int = 0
    min_new_tokens: int = 0

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            raise ValueError(
                f"min_new_tokens must be in [0, max_new_tokens], got {self.min_new_tokens}"
            )

    @property
    def greedy(self) -> bool:
        """Whether these parameters mean greedy decoding (temperature 0)."""
        return self.temperature == 0


@dataclass(frozen=True)
class Completion:
    """One sampled continuation of a plain-text prompt.

    Args:
        text: The continuation, stop token removed.
        tokens: Tokens generated, the stop token included when there is one.
        finished: Whether the model stopped by itself (a stop token), not at
            ``max_new_tokens``.
    """

    text: str
    tokens: int
    finished: bool


@runtime_checkable
class Generator(Protocol):
    """Samples assistant replies to chat conversations."""

    @property
    def name(self) -> str:
        """Identifies the model behind the generator in result rows."""
        ...

    def generate(
        self,
        conversations: Sequence[Sequence[Message]],
        n: int,
        sampling: SamplingParams,
    ) -> list[list[str]]:
        """Sample ``n`` assistant replies to each conversation.

        Args:
            conversations: Conversations as ``{"role", "content"}`` messages, each ending
                with a user turn.
            n: Replies to sample per conversation.
            sampling: Temperature, nucleus, length and seed of the sampling.

        Returns:
            One list of ``n`` reply texts per conversation, in input order.
        """
        ...


def check_conversation(conversation: Sequence[Message], index: int = 0) -> None:
    """Raise unless ``conversation`` is non-empty and ends with a user turn: every backend
    checks the same way, so they are interchangeable.

    Raises:
        DarkmirrorError: Naming the conversation's position and what is wrong.
    """
    if not conversation:
        raise DarkmirrorError(f"conversation {index} is empty; it needs at least a user turn")
    if conversation[-1]["role"] != "user":
        raise DarkmirrorError(
            f"conversation {index} ends with a {conversation[-1]['role']!r} message; "
            "the model replies to a conversation that ends with a 'user' turn"
        )
