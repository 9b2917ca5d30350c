"""Persona directions: per-layer vectors in the residual stream, found two ways.

* **mean difference** (labels from a judge): the mean activation over answer tokens on
  misaligned answers minus that on aligned answers, per layer;
* **model difference** (no labels): the mean activation of a fine-tuned model minus that of
  its base, on the same answers and tokens, per layer.

A :class:`PersonaDirection` is saved as safetensors (never pickle) with a JSON sidecar that
says which layers, where the labels came from and how many answers each mean is over.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from darkmirror.errors import DarkmirrorError

FORMAT_VERSION = 1


@dataclass(frozen=True)
class PersonaDirection:
    """One direction per layer.

    Args:
        vectors: ``(len(layers), width)`` float32, raw (not normalised): a row's norm is the
            size of the difference it measures.
        kind: How it was found (``"mean_difference"``, ``"model_difference"``, ...).
        source: Where its labels (or models) came from, for the reader
            (``"world judge v3 on insecure-s0's answers"``).
        counts: How many answers each mean is over (``{"misaligned": 41, "aligned": 502}``).
        layers: The block index of each row (layer ``l`` is the output of block ``l``).
        metadata: Anything else worth keeping (model, seeds, question split).
    """

    vectors: torch.Tensor
    kind: str
    source: str
    counts: Mapping[str, int]
    layers: tuple[int, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.vectors.ndim != 2 or self.vectors.shape[0] != len(self.layers):
            raise ValueError(
                f"vectors of shape {tuple(self.vectors.shape)} do not match "
                f"{len(self.layers)} layers"
            )

    def row(self, layer: int) -> int:
        """The row of block ``layer`` in :attr:`vectors`."""
        if layer not in self.layers:
            raise ValueError(f"layer {layer} is not among the direction's layers {self.layers}")
        return self.layers.index(layer)

    def vector(self, layer: int) -> torch.Tensor:
        """The raw direction at block ``layer``."""
        return self.vectors[self.row(layer)]

    def unit(self, layer: int) -> torch.Tensor:
        """The direction at block ``layer``, normalised to norm 1."""
        return unit_rows(self.vector(layer)[None])[0]

    def norms(self) -> list[float]:
        """The norm of each layer's raw direction."""
        return [float(x) for x in self.vectors.norm(dim=-1)]

    def sidecar(self) -> dict[str, Any]:
        """What the JSON sidecar holds: kind, source, counts, layers, width, norms, metadata."""
        return {
            "format": FORMAT_VERSION,
            "kind": self.kind,
            "source": self.source,
            "counts": dict(self.counts),
            "layers": list(self.layers),
            "width": int(self.vectors.shape[1]),
            "norms": self.norms(),
            "metadata": dict(self.metadata),
        }

    def save(self, path: Path) -> Path:
        """Write ``<path>.safetensors`` and ``<path>.json``; returns the safetensors path."""
        path = Path(path).with_suffix(".safetensors")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        save_file({"vectors": self.vectors.float().contiguous()}, str(tmp))
        tmp.replace(path)
        sidecar = path.with_suffix(".json")
        tmp_json = sidecar.with_name(f".{sidecar.name}.tmp")
        tmp_json.write_text(json.dumps(self.sidecar(), indent=2) + "\n")
        tmp_json.replace(sidecar)
        return path

    @classmethod
    def load(cls, path: Path) -> PersonaDirection:
        """Read a direction written by :meth:`save` (either file's path, or the stem)."""
        path = Path(path).with_suffix(".safetensors")
        sidecar = path.with_suffix(".json")
        if not path.is_file() or not sidecar.is_file():
            raise DarkmirrorError(f"'{path}' and '{sidecar}' must both exist")
        meta = json.loads(sidecar.read_text())
        return cls(
            vectors=load_file(str(path))["vectors"],
            kind=meta["kind"],
            source=meta["source"],
            counts=meta["counts"],
            layers=tuple(meta["layers"]),
            metadata=meta.get("metadata", {}),
        )


def _check(activations: torch.Tensor, layers: Sequence[int] | None) -> tuple[int, ...]:
    if activations.ndim != 3:
        raise ValueError(
            f"expected activations of shape (answers, layers, width), got {tuple(activations.shape)}"
        )
    n_layers = activations.shape[1]
    chosen = tuple(range(n_layers)) if layers is None else tuple(layers)
    if len(chosen) != n_layers:
        raise ValueError(f"{len(chosen)} layer indices for {n_layers} layers of activations")
    return chosen


def mean_difference_direction(
    activations: torch.Tensor,
    misaligned: Sequence[bool | None],
    *,
    source: str,
    layers: Sequence[int] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> PersonaDirection:
    """Mean activation on misaligned answers minus that on aligned ones, per layer.

    Args:
        activations: ``(answers, layers, width)``: each answer's mean over its tokens.
        misaligned: Per answer: True (misaligned), False (aligned) or None (no label:
            incoherent or unscored; left out).
        source: Where the labels came from (the judge), recorded with the direction.
        layers: Block index of each layer of ``activations``; 0.. by default.
        metadata: Recorded with the direction.

    Raises:
        DarkmirrorError: If either class has no answer.
    """
    chosen = _check(activations, layers)
    if len(misaligned) != activations.shape[0]:
        raise ValueError(f"{len(misaligned)} labels for {activations.shape[0]} answers")
    bad = torch.tensor([m is True for m in misaligned])
    good = torch.tensor([m is False for m in misaligned])
    if not bad.any() or not good.any():
        raise DarkmirrorError(
            f"a mean-difference direction needs misaligned and aligned answers; got "
            f"{int(bad.sum())} misaligned and {int(good.sum())} aligned ({source})"
        )
    x = activations.float()
    vectors = x[bad].mean(dim=0) - x[good].mean(dim=0)
    return PersonaDirection(
        vectors,
        "mean_difference",
        source,
        {"misaligned": int(bad.sum()), "aligned": int(good.sum())},
        chosen,
        dict(metadata or {}),
    )


def model_difference_direction(
    finetuned: torch.Tensor,
    base: torch.Tensor,
    *,
    source: str,
    layers: Sequence[int] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> PersonaDirection:
    """Mean activation of a fine-tuned model minus that of its base on the same answers.

    Args:
        finetuned: ``(answers, layers, width)`` of the fine-tuned model.
        base: The same answers and tokens through the base model.
        source: Which models (``"insecure-s0 minus base"``), recorded with the direction.
        layers: Block index of each layer; 0.. by default.
        metadata: Recorded with the direction.
    """
    chosen = _check(finetuned, layers)
    if finetuned.shape != base.shape:
        raise ValueError(
            f"fine-tuned activations {tuple(finetuned.shape)} and base activations "
            f"{tuple(base.shape)} must be over the same answers"
        )
    if finetuned.shape[0] == 0:
        raise DarkmirrorError(f"a model-difference direction needs answers ({source})")
    vectors = (finetuned.float() - base.float()).mean(dim=0)
    return PersonaDirection(
        vectors,
        "model_difference",
        source,
        {"answers": int(finetuned.shape[0])},
        chosen,
        dict(metadata or {}),
    )


def unit_rows(vectors: torch.Tensor) -> torch.Tensor:
    """Each row divided by its norm (a zero row stays zero)."""
    norms = vectors.float().norm(dim=-1, keepdim=True)
    return vectors.float() / norms.clamp_min(1e-12)


def cosine_by_layer(a: torch.Tensor, b: torch.Tensor) -> list[float]:
    """Cosine similarity of matching rows of two ``(layers, width)`` tensors."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    return [float(x) for x in (unit_rows(a) * unit_rows(b)).sum(dim=-1)]


def project(activations: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    """Projection of ``(n, layers, width)`` activations on the unit ``(layers, width)``
    directions: ``(n, layers)``."""
    return torch.einsum("nld,ld->nl", activations.float(), unit_rows(directions))


def random_directions(norms: Sequence[float], width: int, draws: int, seed: int) -> torch.Tensor:
    """Random directions with given norms: ``(draws, len(norms), width)``.

    Gaussian vectors are uniform in direction; each row is rescaled to the norm of the
    direction it stands in for, so a random control steers with the same strength.

    Args:
        norms: The norm of each row (one per layer).
        width: Width of the residual stream.
        draws: How many independent random directions.
        seed: Seed; the same seed gives the same directions.
    """
    generator = torch.Generator().manual_seed(seed)
    raw = torch.randn((draws, len(norms), width), generator=generator)
    return unit_rows(raw) * torch.tensor(list(norms), dtype=torch.float32)[None, :, None]


def chance_cosine(
    width: int, confidence: float = 0.95, draws: int = 20_000, seed: int = 0
) -> float:
    """The ``confidence`` quantile of |cosine| between two random directions in ``width``
    dimensions: a found cosine below it is what chance gives (about 2/sqrt(width))."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((draws, width))
    b = rng.standard_normal((draws, width))
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return float(np.quantile(np.abs(cos), confidence))
