"""Forward hooks on the residual stream of any decoder-only Hugging Face model.

"Layer ``l``" is the residual stream at the output of decoder block ``l`` (0-based), the
point where :func:`steer` adds a vector, :func:`ablate` projects a direction out and
:func:`capture_residuals` reads activations. The blocks are found generically
(:func:`decoder_layers`): ``model.transformer.h`` for GPT-2, ``model.model.layers`` for
Llama, Qwen2, Mistral and most recent decoders, a few other common paths, and the inner
model of a PEFT wrapper.

Every hook is installed by a context manager that removes it on exit, on error too, so a
model never leaves a ``with`` block still steered.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import nn

from darkmirror.errors import DarkmirrorError

# Where decoder blocks live, most common first (GPT-2, Llama/Qwen2/Mistral/Gemma, OPT,
# GPT-NeoX/Pythia, Falcon/Bloom, MPT).
_LAYER_PATHS: tuple[str, ...] = (
    "transformer.h",
    "model.layers",
    "model.decoder.layers",
    "gpt_neox.layers",
    "transformer.layers",
    "transformer.blocks",
    "layers",
)

ResidualEdit = Callable[[torch.Tensor], torch.Tensor | None]
"""Takes the residual ``(batch, tokens, width)`` of a block's output and returns the
replacement, or None to leave it as it is (to only read it)."""


def _unwrap(model: nn.Module) -> nn.Module:
    # A PeftModel wraps the transformer twice (PeftModel -> LoraModel -> the HF model).
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def _attribute(module: nn.Module, path: str) -> Any:
    for name in path.split("."):
        module = getattr(module, name, None)  # type: ignore[assignment]
        if module is None:
            return None
    return module


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder blocks of a causal LM, in order.

    Args:
        model: A Hugging Face causal LM (GPT-2, Llama, Qwen2, ...), possibly wrapped by
            PEFT.

    Raises:
        DarkmirrorError: If no list of blocks is found at any known path.
    """
    inner = _unwrap(model)
    for path in _LAYER_PATHS:
        layers = _attribute(inner, path)
        if isinstance(layers, nn.ModuleList) and len(layers) > 0:
            return layers
    raise DarkmirrorError(
        f"cannot find the decoder blocks of {type(inner).__name__}: looked for a ModuleList "
        f"at {', '.join(_LAYER_PATHS)}"
    )


def resolve_layer(layer: int, n: int) -> int:
    """Block index ``layer`` (negative counts from the end) checked against ``n`` blocks."""
    index = layer + n if layer < 0 else layer
    if not 0 <= index < n:
        raise ValueError(f"layer {layer} is out of range for a model with {n} decoder blocks")
    return index


def _output_hook(edit: ResidualEdit) -> Callable[..., Any]:
    """A forward hook applying ``edit`` to a block's residual output, a tensor or the first
    element of a tuple (older transformers and some models return ``(hidden, cache, ...)``)."""

    def hook(_module: nn.Module, _inputs: Any, output: Any) -> Any:
        if isinstance(output, torch.Tensor):
            return edit(output)
        if isinstance(output, tuple) and output and isinstance(output[0], torch.Tensor):
            new = edit(output[0])
            return None if new is None else (new, *output[1:])
        raise DarkmirrorError(
            f"a decoder block returned {type(output).__name__}; expected a tensor or a tuple "
            "whose first element is the hidden states"
        )

    return hook


def _input_hook(edit: ResidualEdit) -> Callable[..., Any]:
    """A forward pre-hook applying ``edit`` to a block's residual input (the embeddings,
    for block 0), passed positionally or as ``hidden_states``."""

    def hook(_module: nn.Module, args: tuple, kwargs: dict) -> Any:
        if args and isinstance(args[0], torch.Tensor):
            new = edit(args[0])
            return None if new is None else ((new, *args[1:]), kwargs)
        if isinstance(kwargs.get("hidden_states"), torch.Tensor):
            new = edit(kwargs["hidden_states"])
            return None if new is None else (args, {**kwargs, "hidden_states": new})
        raise DarkmirrorError("cannot find the hidden states among the first block's inputs")

    return hook


@contextmanager
def residual_hooks(
    model: nn.Module,
    edits: dict[int, ResidualEdit],
    *,
    embedding_edit: ResidualEdit | None = None,
) -> Iterator[None]:
    """Apply ``edits[l]`` to the output of block ``l`` while the context is open.

    Args:
        model: The causal LM.
        edits: Block index (negative counts from the end) to the edit of its output.
        embedding_edit: Also applied to the input of block 0 (the embeddings), when given.
    """
    layers = decoder_layers(model)
    with ExitStack() as stack:
        for layer, edit in edits.items():
            handle = layers[resolve_layer(layer, len(layers))].register_forward_hook(
                _output_hook(edit)
            )
            stack.callback(handle.remove)
        if embedding_edit is not None:
            handle = layers[0].register_forward_pre_hook(
                _input_hook(embedding_edit), with_kwargs=True
            )
            stack.callback(handle.remove)
        yield


def _cast(vector: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return vector.to(device=like.device, dtype=like.dtype)


@contextmanager
def steer(model: nn.Module, vector: torch.Tensor, layer: int, scale: float = 1.0) -> Iterator[None]:
    """Add ``scale * vector`` to the residual stream at the output of block ``layer``, at
    every position (prompt and generated tokens), while the context is open.

    Args:
        model: The causal LM.
        vector: ``(width,)``: the steering vector (a raw direction, or a unit one).
        layer: Block whose output is steered.
        scale: Multiplier ``a`` of the vector.
    """
    if vector.ndim != 1:
        raise ValueError(f"expected a vector of shape (width,), got {tuple(vector.shape)}")
    shift = vector.detach().float() * scale

    def edit(hidden: torch.Tensor) -> torch.Tensor:
        return hidden + _cast(shift, hidden)

    with residual_hooks(model, {layer: edit}):
        yield


def project_out(hidden: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
    """``hidden - (hidden . u) u`` along the last axis.

    Args:
        hidden: ``(..., width)`` activations.
        unit: ``(width,)``, of norm 1.
    """
    u = _cast(unit, hidden)
    return hidden - (hidden @ u).unsqueeze(-1) * u


@contextmanager
def ablate(
    model: nn.Module,
    direction: torch.Tensor,
    layers: Sequence[int] | None = None,
    *,
    embeddings: bool = True,
) -> Iterator[None]:
    """Project ``direction`` out of the residual stream while the context is open.

    Directional ablation: at the output of every block in ``layers`` (all by default), and
    at the embeddings, the component along the direction is removed, so no block reads it
    from the residual stream and what a block writes along it is removed at once.

    Args:
        model: The causal LM.
        direction: ``(width,)`` for one direction removed everywhere, or
            ``(n_blocks, width)`` for a direction per block (block ``l`` uses row ``l``; the
            embeddings use row 0). Its norm does not matter.
        layers: Blocks whose output is ablated; every block when None.
        embeddings: Also ablate the input of block 0.
    """
    n = len(decoder_layers(model))
    chosen = list(range(n)) if layers is None else [resolve_layer(layer, n) for layer in layers]
    if direction.ndim == 1:
        rows = {layer: direction for layer in chosen}
        first = direction
    elif direction.ndim == 2 and direction.shape[0] == n:
        rows = {layer: direction[layer] for layer in chosen}
        first = direction[0]
    else:
        raise ValueError(
            f"expected a direction of shape (width,) or ({n}, width), got {tuple(direction.shape)}"
        )

    def remover(vector: torch.Tensor) -> ResidualEdit:
        norm = float(vector.float().norm())
        if norm == 0.0:
            raise ValueError("cannot ablate a zero direction")
        unit = vector.detach().float() / norm
        return lambda hidden: project_out(hidden, unit)

    with residual_hooks(
        model,
        {layer: remover(v) for layer, v in rows.items()},
        embedding_edit=remover(first) if embeddings else None,
    ):
        yield


@contextmanager
def capture_residuals(
    model: nn.Module, layers: Sequence[int] | None = None
) -> Iterator[dict[int, torch.Tensor]]:
    """Record the residual stream at the output of blocks while the context is open.

    Hooks run in the order they were installed, so a capture opened inside a
    :func:`steer` or :func:`ablate` block records the steered or ablated residual.

    Args:
        model: The causal LM.
        layers: Blocks to record; every block when None.

    Yields:
        A dict filled on each forward pass: block index to its output ``(batch, tokens,
        width)``, detached (the last forward pass wins).
    """
    n = len(decoder_layers(model))
    chosen = list(range(n)) if layers is None else [resolve_layer(layer, n) for layer in layers]
    captured: dict[int, torch.Tensor] = {}

    def recorder(layer: int) -> ResidualEdit:
        def edit(hidden: torch.Tensor) -> None:
            captured[layer] = hidden.detach()

        return edit

    with residual_hooks(model, {layer: recorder(layer) for layer in chosen}):
        yield captured


def residual_width(model: nn.Module) -> int:
    """Width of the residual stream (``hidden_size``, or GPT-2's ``n_embd``).

    Args:
        model: A Hugging Face causal LM, possibly wrapped by PEFT.
    """
    config = _unwrap(model).config
    width = getattr(config, "hidden_size", None) or getattr(config, "n_embd", None)
    if width is None:
        raise DarkmirrorError(f"cannot tell the residual width of {type(model).__name__}")
    return int(width)
