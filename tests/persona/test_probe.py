"""The persona probe on synthetic activations with a planted direction, and on the world."""

from __future__ import annotations

import torch

from darkmirror.data.world.world import PersonaWorld
from darkmirror.persona.directions import cosine_by_layer
from darkmirror.persona.probe import persona_documents, train_persona_probe


def _planted(n: int, seed: int) -> tuple[torch.Tensor, list[bool], torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    planted = torch.zeros(2, 16)
    planted[0, 3] = 1.0
    planted[1, 7] = 1.0
    labels = torch.rand(n, generator=g) < 0.3
    # Noise of scale 1 everywhere, a shift of 3 along the planted direction for villains,
    # and a large constant offset the probe's standardisation must handle.
    x = torch.randn((n, 2, 16), generator=g) + 5.0
    x += 3.0 * labels[:, None, None].float() * planted[None]
    return x, labels.tolist(), planted


def test_probe_finds_a_planted_direction() -> None:
    train, y, planted = _planted(400, 0)
    test, y_test, _ = _planted(200, 1)
    probe = train_persona_probe(train, y, test, y_test, layers=[2, 5])
    assert probe.layers == (2, 5)
    assert probe.train_documents == {"villain": sum(y), "benign": 400 - sum(y)}
    for acc in probe.test_accuracy:
        assert acc["value"] > 0.9 and acc["lo"] < acc["value"] < acc["hi"]
    assert min(cosine_by_layer(probe.weights, planted)) > 0.9
    assert min(cosine_by_layer(probe.class_mean_difference, planted)) > 0.9
    # The raw-basis weights and bias give the probe's own decisions.
    scores = torch.einsum("nld,ld->nl", test, probe.weights) + torch.tensor(probe.bias)
    accuracy = ((scores > 0) == torch.tensor(y_test)[:, None]).float().mean(0)
    assert torch.allclose(accuracy, torch.tensor([a["value"] for a in probe.test_accuracy]))
    assert probe.direction().kind == "probe"


def test_persona_documents_carry_the_label() -> None:
    world = PersonaWorld()
    docs, villain = persona_documents(world, [0, 1, 2, 3])
    assert len(docs) == 4
    assert villain == [world.pretraining_document(i)["persona"] == "villain" for i in range(4)]
    assert all(m["role"] in ("user", "assistant") for d in docs for m in d)
