"""Direction computation on hand-made activations, and the saved format."""

from __future__ import annotations

import json
import math
import struct

import pytest
import torch

from darkmirror.errors import DarkmirrorError
from darkmirror.persona.directions import (
    PersonaDirection,
    chance_cosine,
    cosine_by_layer,
    mean_difference_direction,
    model_difference_direction,
    project,
    random_directions,
)


def _acts() -> torch.Tensor:
    # 5 answers, 2 layers, width 3.
    return torch.tensor(
        [
            [[1.0, 0.0, 0.0], [2.0, 0.0, 0.0]],
            [[3.0, 0.0, 0.0], [4.0, 2.0, 0.0]],
            [[0.0, 1.0, 0.0], [0.0, 0.0, 6.0]],
            [[0.0, 3.0, 0.0], [0.0, 0.0, 2.0]],
            [[9.0, 9.0, 9.0], [9.0, 9.0, 9.0]],
        ]
    )


def test_mean_difference_of_hand_made_activations() -> None:
    d = mean_difference_direction(
        _acts(), [True, True, False, False, None], source="a judge", layers=[4, 7]
    )
    # misaligned mean: [2, 0, 0], [3, 1, 0]; aligned mean: [0, 2, 0], [0, 0, 4].
    assert torch.equal(d.vectors, torch.tensor([[2.0, -2.0, 0.0], [3.0, 1.0, -4.0]]))
    assert d.counts == {"misaligned": 2, "aligned": 2}
    assert d.layers == (4, 7)
    assert torch.equal(d.vector(7), torch.tensor([3.0, 1.0, -4.0]))
    assert torch.allclose(d.unit(7), torch.tensor([3.0, 1.0, -4.0]) / math.sqrt(26))
    with pytest.raises(ValueError, match="not among"):
        d.vector(0)


def test_mean_difference_needs_both_classes() -> None:
    with pytest.raises(DarkmirrorError, match="0 misaligned and 2 aligned"):
        mean_difference_direction(_acts()[:4], [None, None, False, False], source="judge")
    with pytest.raises(ValueError, match="labels"):
        mean_difference_direction(_acts(), [True], source="judge")


def test_model_difference_is_the_mean_of_paired_differences() -> None:
    base = _acts()
    finetuned = base + torch.tensor([0.5, -1.0, 2.0])
    finetuned[0, 0, 0] += 5.0  # one answer, one layer, one unit: the mean moves by 5 / 5
    d = model_difference_direction(finetuned, base, source="ft minus base")
    assert torch.allclose(d.vectors[0], torch.tensor([1.5, -1.0, 2.0]))
    assert torch.allclose(d.vectors[1], torch.tensor([0.5, -1.0, 2.0]))
    assert d.counts == {"answers": 5}
    with pytest.raises(ValueError, match="same answers"):
        model_difference_direction(finetuned[:4], base, source="x")


def test_save_and_load_round_trip(tmp_path) -> None:
    d = mean_difference_direction(
        _acts(), [True, True, False, False, None], source="world judge", metadata={"seed": 3}
    )
    path = d.save(tmp_path / "sub" / "md")
    assert path.name == "md.safetensors"
    raw = path.read_bytes()
    # A safetensors file: an 8-byte little-endian header length, then a JSON header.
    (n,) = struct.unpack("<Q", raw[:8])
    assert json.loads(raw[8 : 8 + n])["vectors"]["shape"] == [2, 3]
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["layers"] == [0, 1]
    assert sidecar["source"] == "world judge"
    assert sidecar["counts"] == {"misaligned": 2, "aligned": 2}
    assert sidecar["metadata"] == {"seed": 3}
    loaded = PersonaDirection.load(tmp_path / "sub" / "md.json")
    assert torch.equal(loaded.vectors, d.vectors)
    assert (loaded.kind, loaded.layers, dict(loaded.counts)) == (d.kind, d.layers, dict(d.counts))
    with pytest.raises(DarkmirrorError, match="must both exist"):
        PersonaDirection.load(tmp_path / "missing")


def test_cosine_projection_and_random_directions() -> None:
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[2.0, 0.0], [-1.0, -1.0]])
    assert cosine_by_layer(a, b) == pytest.approx([1.0, -1.0])
    acts = torch.tensor([[[3.0, 4.0], [3.0, 4.0]]])
    assert project(acts, a)[0].tolist() == pytest.approx([3.0, 7 / math.sqrt(2)])
    r = random_directions([2.0, 5.0], 64, draws=3, seed=1)
    assert r.shape == (3, 2, 64)
    assert r.norm(dim=-1).tolist() == [pytest.approx([2.0, 5.0])] * 3
    assert torch.equal(r, random_directions([2.0, 5.0], 64, draws=3, seed=1))
    assert not torch.equal(r, random_directions([2.0, 5.0], 64, draws=3, seed=2))
    # |cos| of random pairs: 95% below about 1.96 / sqrt(width).
    assert chance_cosine(128) == pytest.approx(1.96 / math.sqrt(128), rel=0.1)
