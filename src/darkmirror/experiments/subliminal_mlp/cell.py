"""One cell of the sweep: a teacher and its two students for one (seed, m), scored.

The *same-init* student starts from the teacher's initial weights, the *cross-init* student
from a fresh random initialisation; both distil the same teacher on the same noise in the
same batch order, so they differ only in where they start. Each of the four networks (the
untrained initial one included) becomes a :class:`NetworkAccuracy` measurement.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch

from darkmirror.data.measurements import Measurement
from darkmirror.experiments.subliminal_mlp.digits import DigitsSplit
from darkmirror.experiments.subliminal_mlp.spec import SubliminalMLPSpec
from darkmirror.experiments.subliminal_mlp.training import (
    correct_predictions,
    distill_student,
    heldout_loss,
    initial_networks,
    seeded_generator,
    train_teacher,
    uniform_noise,
)

__all__ = ["MODEL_KINDS", "NetworkAccuracy", "run_cell"]

MODEL_KINDS = ("teacher", "initial", "student_same_init", "student_cross_init")
"""The networks of each (seed, m) cell, as named in the measurements' ``model``."""


class NetworkAccuracy(Measurement):
    """Test accuracy of one network of one cell (a row of ``measurements.jsonl``).

    The experiment samples no answers: these are its only records, and every figure of its
    report is computed from them.

    Args:
        model: The network (one of :data:`MODEL_KINDS`).
        seed: The cell's seed (its initialisations, noise and batch order).
        m: Auxiliary logits of the network.
        accuracy: Share of test images whose argmax over the regular logits is the label.
        correct: How many.
        n_test: Test images.
        final_train_loss: The last training batch's loss (teacher and students).
        heldout_loss_before: The students' distillation loss on held-out noise before
            distillation.
        heldout_loss_after: And after.
    """

    measure: Literal["mlp_accuracy"] = "mlp_accuracy"
    model: str
    seed: int
    m: int
    accuracy: float
    correct: int
    n_test: int
    final_train_loss: float | None = None
    heldout_loss_before: float | None = None
    heldout_loss_after: float | None = None


@contextmanager
def one_thread() -> Iterator[None]:
    """Train with one torch thread.

    Layers this small gain nothing from threads, and on a shared 2-core machine the
    threads' spinning made training 20x slower; one thread also keeps the numbers
    independent of the core count.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_cell(
    data: DigitsSplit, spec: SubliminalMLPSpec, seed: int, m: int
) -> list[NetworkAccuracy]:
    """Train one teacher and its two students; one measurement per network, in the order
    of :data:`MODEL_KINDS`."""
    with one_thread():
        initial, cross = initial_networks(spec.hidden_sizes, m, seed)
        teacher = copy.deepcopy(initial)
        teacher_loss = train_teacher(
            teacher,
            data.x_train,
            data.y_train,
            spec.teacher,
            seeded_generator(seed, "teacher_order"),
        )
        teacher.requires_grad_(False)
        settings = spec.student
        noise = uniform_noise(settings.noise_inputs, settings, seeded_generator(seed, "noise"))
        heldout = uniform_noise(settings.heldout_noise, settings, seeded_generator(seed, "heldout"))
        students = {"student_same_init": copy.deepcopy(initial), "student_cross_init": cross}
        figures: dict[str, dict[str, float]] = {
            "teacher": {"final_train_loss": teacher_loss},
            "initial": {},
        }
        for kind, student in students.items():
            before = heldout_loss(student, teacher, heldout, settings.loss)
            # Same noise, same batch order: the two students differ only in where they start.
            final = distill_student(
                student, teacher, noise, settings, seeded_generator(seed, "student_order")
            )
            figures[kind] = {
                "final_train_loss": final,
                "heldout_loss_before": before,
                "heldout_loss_after": heldout_loss(student, teacher, heldout, settings.loss),
            }
        networks = {"teacher": teacher, "initial": initial, **students}
        n_test = len(data.y_test)
        out = []
        for kind in MODEL_KINDS:
            correct = correct_predictions(networks[kind], data.x_test, data.y_test)
            out.append(
                NetworkAccuracy(
                    model=kind,
                    seed=seed,
                    m=m,
                    accuracy=correct / n_test,
                    correct=correct,
                    n_test=n_test,
                    **figures[kind],
                )
            )
        return out
