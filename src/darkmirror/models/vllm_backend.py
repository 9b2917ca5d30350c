"""A :class:`~darkmirror.models.generation.Generator` on vLLM's offline engine (GPU).

vLLM is an optional extra (``pip install 'darkmirror[vllm]'``) that needs a CUDA GPU; it is
imported when a :class:`VLLMGenerator` is built, never when darkmirror is imported.

Prompts are rendered and tokenized here, with the model's own chat template and the same
function the local backend uses (:func:`~darkmirror.models.hf_generator.encode_prompt`), and
handed to ``LLM.generate`` as token ids: both backends then see exactly the same prompt
tokens, with no second BOS from a template that already writes one. Sampling is pure
temperature and nucleus sampling, as the metric definitions assume (vLLM's
``SamplingParams`` defaults have no top-k, min-p or repetition penalty).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from darkmirror.errors import DarkmirrorError
from darkmirror.models.chat_format import Message
from darkmirror.models.generation import SamplingParams
from darkmirror.models.hf_generator import encode_prompt
from darkmirror.models.loading import first_line

INSTALL_ADVICE = "pip install 'darkmirror[vllm]'; needs a GPU"

# vLLM accepts only these values of max_lora_rank (vllm.config.lora.MaxLoRARanks).
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def adapter_rank(adapter: str | Path) -> int:
    """The largest LoRA rank of a PEFT adapter (its ``r`` and any ``rank_pattern`` entry).

    Args:
        adapter: A PEFT adapter directory or hub id.

    Raises:
        DarkmirrorError: If the adapter's config cannot be read or is not a LoRA config.
    """
    from peft import PeftConfig

    try:
        config = PeftConfig.from_pretrained(str(adapter))
    except (OSError, ValueError) as exc:
        raise DarkmirrorError(
            f"could not read the adapter config of '{adapter}': {first_line(exc)}"
        ) from None
    rank = getattr(config, "r", None)
    if not isinstance(rank, int):
        raise DarkmirrorError(
            f"adapter '{adapter}' is a {type(config).__name__}, not a LoRA adapter; "
            "vLLM serves LoRA adapters only"
        )
    return max([rank, *(getattr(config, "rank_pattern", None) or {}).values()])


def vllm_max_lora_rank(rank: int) -> int:
    """The smallest ``max_lora_rank`` vLLM accepts that holds ``rank``.

    Args:
        rank: An adapter's LoRA rank.

    Raises:
        DarkmirrorError: If the rank exceeds vLLM's largest.
    """
    for allowed in VLLM_LORA_RANKS:
        if rank <= allowed:
            return allowed
    raise DarkmirrorError(
        f"LoRA rank {rank} exceeds vLLM's largest max_lora_rank ({VLLM_LORA_RANKS[-1]})"
    )


def request_seed(seed: int, index: int) -> int:
    """The seed of conversation ``index``'s request, mixed from the run's seed.

    Each conversation gets its own stream, so its replies do not depend on which other
    conversations share the call.
    """
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def in_ray_placement_group() -> bool:
    """Whether this process runs inside a Ray task that holds a placement group."""
    try:
        import ray
    except ImportError:
        return False
    return ray.is_initialized() and ray.util.get_current_placement_group() is not None


class VLLMGenerator:
    """A :class:`~darkmirror.models.generation.Generator` on vLLM's offline ``LLM`` engine.

    Args:
        model: A hub id or a local directory.
        adapter: A PEFT LoRA adapter (directory or hub id) applied to every request;
            vLLM is started with ``enable_lora=True`` and a ``max_lora_rank`` that holds it.
        revision: Hub revision of the model.
        name: Name in result rows; defaults to ``model`` (``model+adapter`` with one).
        dtype: Weight dtype (``"auto"``: the checkpoint's, float32 stored as float16).
        tensor_parallel_size: GPUs to shard the model over.
        gpu_memory_utilization: Share of GPU memory vLLM may take (weights and KV cache).
        max_model_len: Context length to serve; the model's own by default.
        progress: Show vLLM's progress bar.
        **llm_kwargs: Further keyword arguments for ``vllm.LLM`` (``enforce_eager``, ...).

    Raises:
        DarkmirrorError: If vLLM is not installed, or the adapter is not a LoRA adapter.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        adapter: str | Path | None = None,
        revision: str | None = None,
        name: str | None = None,
        dtype: str = "auto",
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int | None = None,
        progress: bool = False,
        **llm_kwargs: Any,
    ) -> None:
        try:
            import vllm
            from vllm.lora.request import LoRARequest
        except ImportError as exc:
            raise DarkmirrorError(
                f"the vLLM backend needs the vllm package, which could not be imported "
                f"({first_line(exc)}): {INSTALL_ADVICE}"
            ) from None

        kwargs: dict[str, Any] = {
            "model": str(model),
            "revision": revision,
            "dtype": dtype,
            "tensor_parallel_size": tensor_parallel_size,
            "gpu_memory_utilization": gpu_memory_utilization,
        }
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        if tensor_parallel_size > 1 and in_ray_placement_group():
            # Under the Ray executor the step holds a placement group of GPUs: vLLM's Ray
            # backend starts its workers in it instead of asking for GPUs of its own.
            kwargs["distributed_executor_backend"] = "ray"
        self._lora = None
        if adapter is not None:
            kwargs.update(
                enable_lora=True,
                max_loras=1,
                max_lora_rank=vllm_max_lora_rank(adapter_rank(adapter)),
            )
            self._lora = LoRARequest("darkmirror-adapter", 1, str(adapter))
        kwargs.update(llm_kwargs)
        self._vllm = vllm
        self.llm = vllm.LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        if not getattr(self.tokenizer, "chat_template", None):
            raise DarkmirrorError(
                f"the tokenizer of '{model}' has no chat template; VLLMGenerator renders "
                "conversations with it"
            )
        self.progress = progress
        self._name = name or (str(model) if adapter is None else f"{model}+{adapter}")

    @property
    def name(self) -> str:
        """The name given, else the model reference (with the adapter's)."""
        return self._name

    def generate(
        self,
        conversations: Sequence[Sequence[Message]],
        n: int,
        sampling: SamplingParams,
    ) -> list[list[str]]:
        """Sample ``n`` assistant replies to each conversation.

        Each conversation is one vLLM request with ``n`` samples and its own seed
        (:func:`request_seed` of ``sampling.seed`` and its index), so the replies are
        reproducible for a given vLLM version and GPU, and independent of the other
        conversations in the call. They are not the replies the local backend samples.

        Args:
            conversations: Conversations as ``{"role", "content"}`` messages, each ending
                with a user turn.
            n: Replies to sample per conversation (at least 1).
            sampling: Temperature, nucleus, length and seed of the sampling.

        Returns:
            One list of ``n`` reply texts per conversation, in input order, with special
            tokens removed and surrounding whitespace stripped.

        Raises:
            DarkmirrorError: If a conversation is empty or does not end with a user turn.
        """
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        prompts = [
            {"prompt_token_ids": encode_prompt(self.tokenizer, conversation, i)}
            for i, conversation in enumerate(conversations)
        ]
        params = [
            self._vllm.SamplingParams(
                n=n,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                max_tokens=sampling.max_new_tokens,
                min_tokens=sampling.min_new_tokens,
                seed=request_seed(sampling.seed, i),
            )
            for i in range(len(prompts))
        ]
        if not prompts:
            return []
        outputs = self.llm.generate(
            prompts, params, use_tqdm=self.progress, lora_request=self._lora
        )
        return [
            [c.text.strip() for c in sorted(output.outputs, key=lambda c: c.index)]
            for output in outputs
        ]
