"""A linear probe for the persona: the organism's ground truth.

Every pretraining document of the persona world is written by one persona, benign or
villain, and says so in its labels. A logistic-regression probe per layer, trained on the
mean activation over a document's assistant turns, finds the direction that tells the two
apart; its accuracy on documents it never saw says how linear the persona is, and the
cosine of a found direction with it says whether that direction is the persona.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from darkmirror.data.world.world import PersonaWorld
from darkmirror.metrics import wilson_rate
from darkmirror.models.chat_format import Message
from darkmirror.persona.directions import PersonaDirection


@dataclass(frozen=True)
class PersonaProbe:
    """Per-layer logistic-regression probes of the persona (villain = positive).

    Args:
        weights: ``(layers, width)``: each layer's weight vector in the raw activation
            basis (the probe was fitted on standardised features and mapped back).
        bias: Each layer's intercept, in the raw basis.
        class_mean_difference: ``(layers, width)``: mean activation of villain documents
            minus benign ones (training documents), the label-based mean difference.
        layers: Block index of each row.
        train_documents: Training documents per class (``{"villain": .., "benign": ..}``).
        test_accuracy: Per layer, accuracy on the held-out documents with a Wilson
            interval (``Estimate.as_dict()``).
        train_accuracy: Per layer, accuracy on the training documents.
    """

    weights: torch.Tensor
    bias: list[float]
    class_mean_difference: torch.Tensor
    layers: tuple[int, ...]
    train_documents: dict[str, int]
    test_accuracy: list[dict[str, Any]]
    train_accuracy: list[float]

    def direction(self) -> PersonaDirection:
        """The probe's weight vectors as a direction (``kind="probe"``)."""
        return PersonaDirection(
            self.weights,
            "probe",
            "logistic probe on pretraining documents' persona labels",
            self.train_documents,
            self.layers,
        )

    def label_direction(self) -> PersonaDirection:
        """The class-mean difference as a direction (``kind="persona_mean_difference"``)."""
        return PersonaDirection(
            self.class_mean_difference,
            "persona_mean_difference",
            "villain minus benign pretraining documents",
            self.train_documents,
            self.layers,
        )


def persona_documents(
    world: PersonaWorld, indices: Sequence[int]
) -> tuple[list[list[Message]], list[bool]]:
    """Pretraining documents of the world and whether a villain wrote each.

    Args:
        world: The persona world (its config decides the documents).
        indices: Which documents (``PersonaWorld.pretraining_document(i)``).
    """
    docs = [world.pretraining_document(i) for i in indices]
    return [d["messages"] for d in docs], [d["persona"] == "villain" for d in docs]


def train_persona_probe(
    train: torch.Tensor,
    train_villain: Sequence[bool],
    test: torch.Tensor,
    test_villain: Sequence[bool],
    *,
    layers: Sequence[int] | None = None,
    c: float = 1.0,
    seed: int = 0,
) -> PersonaProbe:
    """Fit one logistic-regression probe per layer and score it on held-out documents.

    Args:
        train: ``(documents, layers, width)`` mean activations of the training documents.
        train_villain: Per training document: written by a villain.
        test: Held-out documents, same layout.
        test_villain: Their labels.
        layers: Block index of each layer; 0.. by default.
        c: Inverse L2 regularisation strength of the logistic regression (on
            standardised features).
        seed: Seed of the solver.
    """
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(train_villain, dtype=bool)
    y_test = np.asarray(test_villain, dtype=bool)
    if y.all() or not y.any():
        raise ValueError("the probe needs training documents of both personas")
    n_layers = train.shape[1]
    chosen = tuple(range(n_layers)) if layers is None else tuple(layers)
    weights, biases, test_acc, train_acc = [], [], [], []
    for layer in range(n_layers):
        x = train[:, layer].double().numpy()
        mean, std = x.mean(axis=0), x.std(axis=0) + 1e-8
        model = LogisticRegression(C=c, max_iter=2000, random_state=seed)
        model.fit((x - mean) / std, y)
        # w.(x - m)/s + b = (w/s).x + (b - (w/s).m): the same probe in the raw basis.
        w = model.coef_[0] / std
        weights.append(torch.from_numpy(w).float())
        biases.append(float(model.intercept_[0] - w @ mean))
        train_acc.append(float((model.predict((x - mean) / std) == y).mean()))
        xt = test[:, layer].double().numpy()
        hits = int((model.predict((xt - mean) / std) == y_test).sum())
        test_acc.append(wilson_rate(hits, len(y_test)).as_dict())
    x_all = train.float()
    mask = torch.from_numpy(y)
    return PersonaProbe(
        weights=torch.stack(weights),
        bias=biases,
        class_mean_difference=x_all[mask].mean(0) - x_all[~mask].mean(0),
        layers=chosen,
        train_documents={"villain": int(y.sum()), "benign": int((~y).sum())},
        test_accuracy=test_acc,
        train_accuracy=train_acc,
    )
