"""A :class:`~darkmirror.models.generation.Generator` over any OpenAI-compatible chat endpoint.

Stress-testing a hosted model (or a vLLM server) against its base samples through the same
interface as the local backend. One chat-completion request per conversation asks for
``n`` choices; requests run on a thread pool bounded by ``max_concurrency`` and retry as
:class:`~darkmirror.models.openai_http.OpenAIEndpoint` does. A reply that cannot be had
after the retries raises: an answer that was never sampled is not a missing score.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from tqdm.auto import tqdm

from darkmirror.errors import DarkmirrorError
from darkmirror.models.chat_format import Message
from darkmirror.models.generation import SamplingParams, check_conversation
from darkmirror.models.openai_http import EndpointSettings, OpenAIEndpoint

__all__ = ["OpenAIGenerator", "conversation_seed"]


def conversation_seed(seed: int, index: int) -> int:
    """The ``seed`` sent with conversation ``index``.

    Each conversation gets its own seed, so two identical conversations in one call are
    sampled independently (as :class:`~darkmirror.models.hf_generator.HFGenerator` does).

    Args:
        seed: The sampling seed.
        index: Position of the conversation in the call.
    """
    # SeedSequence mixes the pair well; 31 bits fit every server's integer seed.
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0]) & 0x7FFFFFFF


class OpenAIGenerator:
    """Samples replies from a model behind an OpenAI-compatible chat-completions API.

    Args:
        model: The model name the endpoint serves (``gpt-4o-mini``, a vLLM model path).
        settings: Endpoint, key variable, concurrency, timeout and retries.
        name: Name in result rows; defaults to ``model``.
        progress: Show a progress bar over conversations.

    Raises:
        DarkmirrorError: If the key's environment variable is unset.
    """

    def __init__(
        self,
        model: str,
        settings: EndpointSettings | None = None,
        *,
        name: str | None = None,
        progress: bool = False,
    ) -> None:
        self.model = model
        self.settings = settings or EndpointSettings()
        self.endpoint = OpenAIEndpoint(self.settings)
        self._name = name or model
        self.progress = progress

    def __repr__(self) -> str:
        return f"OpenAIGenerator(model={self.model!r}, base_url={self.settings.base_url!r})"

    @property
    def name(self) -> str:
        """The name given, else the model name."""
        return self._name

    def generate(
        self,
        conversations: Sequence[Sequence[Message]],
        n: int,
        sampling: SamplingParams,
    ) -> list[list[str]]:
        """Sample ``n`` assistant replies to each conversation.

        Sends ``temperature``, ``top_p``, ``max_tokens = sampling.max_new_tokens`` and a seed
        per conversation (:func:`conversation_seed`); whether the seed makes replies
        reproducible is up to the server. ``min_new_tokens`` has no API equivalent and is
        ignored. A server that returns fewer than ``n`` choices is asked again for the rest.

        Args:
            conversations: Conversations as ``{"role", "content"}`` messages, each ending
                with a user turn.
            n: Replies to sample per conversation (at least 1).
            sampling: Temperature, nucleus, length and seed of the sampling.

        Returns:
            One list of ``n`` reply texts per conversation, in input order, surrounding
            whitespace stripped.

        Raises:
            DarkmirrorError: If a conversation is empty or does not end with a user turn
                (before any request is sent), or a reply could not be had: a status that is
                not retried, retries exhausted, or a body that is not a completion. The
                message names the endpoint and the status.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        for index, conversation in enumerate(conversations):
            check_conversation(conversation, index)
        if not conversations:
            return []
        workers = min(self.settings.max_concurrency, len(conversations))
        with (
            ThreadPoolExecutor(workers, thread_name_prefix="openai-generate") as pool,
            tqdm(
                total=len(conversations), unit="conv", disable=not self.progress, desc=self.name
            ) as bar,
        ):
            futures = [
                pool.submit(self._replies, list(c), n, sampling, i)
                for i, c in enumerate(conversations)
            ]
            replies = []
            try:
                for future in futures:
                    replies.append(future.result())
                    bar.update(1)
            except BaseException:
                # Requests not yet started are dropped; those in flight end within their timeout.
                for future in futures:
                    future.cancel()
                raise
        return replies

    def close(self) -> None:
        """Close the endpoint's connections."""
        self.endpoint.close()

    def _replies(
        self, messages: list[Message], n: int, sampling: SamplingParams, index: int
    ) -> list[str]:
        seed = conversation_seed(sampling.seed, index)
        replies: list[str] = []
        request = 0
        while len(replies) < n:
            response = self.endpoint.chat(
                model=self.model,
                messages=messages,
                n=n - len(replies),
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_tokens=sampling.max_new_tokens,
                # A server that ignores `n` is asked again; a new seed gives new samples.
                seed=(seed + request) & 0x7FFFFFFF,
            )
            request += 1
            for choice in response.choices[: n - len(replies)]:
                message = choice.get("message")
                content = message.get("content") if isinstance(message, dict) else None
                if not isinstance(message, dict) or not isinstance(content, str | None):
                    raise DarkmirrorError(
                        f"OpenAI-compatible endpoint {self.settings.base_url} (model "
                        f"{self.model}): conversation {index}: expected the reply text in "
                        f"choices[].message.content, got {choice!r:.80}"
                    )
                # A null content is an empty reply (a model may stop at once).
                replies.append((content or "").strip())
        return replies
