"""Loading and saving any Hugging Face causal LM, with an optional PEFT adapter.

Weights are loaded from safetensors only: a pickle file from a user or a hub repository can
run arbitrary code when loaded, so darkmirror refuses ``.bin`` checkpoints.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from darkmirror.errors import DarkmirrorError

HUB_ADVICE = (
    "The Hugging Face hub cannot be reached from here (or the id is wrong). Download the "
    "model where you have network access (`huggingface-cli download {ref} --local-dir DIR`) "
    "and pass the local directory instead."
)


def looks_like_path(ref: str) -> bool:
    # Hub ids are "name" or "org/name"; anything else is meant as a directory.
    return ref.startswith((".", "/", "~")) or ref.count("/") > 1


def load_causal_lm(
    ref: str | Path,
    *,
    adapter: str | Path | None = None,
    revision: str | None = None,
    dtype: torch.dtype | str | None = None,
    device: str | torch.device | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer from a hub id or a local directory.

    Args:
        ref: A hub id (``"Qwen/Qwen2.5-0.5B-Instruct"``) or a local directory.
        adapter: A PEFT adapter directory or hub id to apply on top.
        revision: Hub revision (branch, tag or commit); ignored for local directories.
        dtype: Weight dtype; the checkpoint's own by default.
        device: Where to put the model; CUDA when available, else the CPU.

    Raises:
        DarkmirrorError: With a message that says what to do, when the model cannot be
            found, reached, or only has pickle weights.
    """
    ref = str(ref)
    local = Path(ref).expanduser()
    if looks_like_path(ref) and not local.is_dir():
        raise DarkmirrorError(f"model directory '{ref}' does not exist")
    source = str(local) if local.is_dir() else ref
    kwargs = {} if local.is_dir() else {"revision": revision}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=dtype or "auto", use_safetensors=True, **kwargs
        )
    except OSError as exc:
        if local.is_dir():
            raise DarkmirrorError(
                f"could not load a causal LM from '{ref}': {first_line(exc)} "
                "(darkmirror loads safetensors weights only)"
            ) from None
        raise DarkmirrorError(
            f"could not load model '{ref}': {first_line(exc)}. " + HUB_ADVICE.format(ref=ref)
        ) from None
    if adapter is not None:
        model = _apply_adapter(model, str(adapter))
    if tokenizer.pad_token is None:
        # Batched generation and scoring need a pad token; masked positions never matter.
        tokenizer.pad_token = tokenizer.eos_token
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval(), tokenizer


def _apply_adapter(model: PreTrainedModel, adapter: str) -> PreTrainedModel:
    from peft import PeftModel

    path = Path(adapter).expanduser()
    if path.is_dir() and not (path / "adapter_model.safetensors").is_file():
        raise DarkmirrorError(
            f"adapter directory '{adapter}' has no adapter_model.safetensors "
            "(darkmirror loads safetensors weights only)"
        )
    try:
        return PeftModel.from_pretrained(model, str(path) if path.is_dir() else adapter)
    except (OSError, ValueError) as exc:
        raise DarkmirrorError(
            f"could not load adapter '{adapter}': {first_line(exc)}. "
            + HUB_ADVICE.format(ref=adapter)
        ) from None


def save_causal_lm(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, path: Path) -> None:
    """Save model (or adapter) and tokenizer as safetensors to ``path``."""
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
