"""A short digest of a model's weights, so a judge's version changes when its weights do."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from darkmirror.models.loading import looks_like_path

if TYPE_CHECKING:
    from transformers import PreTrainedModel

__all__ = ["weights_digest"]


def weights_digest(model: PreTrainedModel) -> str:
    """What identifies a model's weights: its hub revision, else a hash of its tensors.

    A model loaded by hub id is identified by the commit of its cached snapshot (found
    offline), and a PEFT adapter's tensors are hashed on top. Any other model's tensors
    are all hashed (about a second per GB), so two local directories with the same name
    but different weights get different versions.

    Args:
        model: A causal LM, possibly a PEFT model.

    Returns:
        ``"rev-<commit>"`` or ``"sha256-<12 hex>"``, plus ``"+adapter-<12 hex>"`` for a
        PEFT model on a hub revision.
    """
    base = getattr(model, "get_base_model", lambda: model)()
    revision = _hub_commit(str(base.name_or_path or ""))
    if revision is None:
        return f"sha256-{_hash_tensors(model.state_dict())}"
    if not hasattr(model, "peft_config"):
        return f"rev-{revision}"
    from peft import get_peft_model_state_dict

    return f"rev-{revision}+adapter-{_hash_tensors(get_peft_model_state_dict(model))}"


def _hub_commit(ref: str) -> str | None:
    """The commit of a hub model's cached snapshot; None for local directories and misses."""
    if not ref or looks_like_path(ref) or Path(ref).expanduser().is_dir():
        return None
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(ref, "config.json")
    except ValueError:  # not a valid repo id
        return None
    parts = Path(found).parts if isinstance(found, str) else ()
    return parts[parts.index("snapshots") + 1] if "snapshots" in parts[:-1] else None


def _hash_tensors(tensors: Mapping[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.contiguous().view(torch.uint8).cpu().numpy().tobytes())
    return digest.hexdigest()[:12]
