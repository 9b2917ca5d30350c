"""The networks of the experiment and how they are trained.

The set-up follows Cloud et al. (2025), "Subliminal learning", section 6:

- an MLP 64-hidden-(10+m) with ReLU has 10 regular logits and m auxiliary logits;
- the *teacher* is trained with cross-entropy on the 10 regular logits only (the auxiliary
  logits get no gradient);
- a *student* is trained to match the teacher's m auxiliary logits only (KL divergence
  between their softmaxes, as in the paper's code), on inputs of uniform noise; it never
  sees a digit or a label, and its regular logits get no gradient;
- every network is scored by test accuracy of the argmax of its 10 regular logits.

Every random draw comes from a generator seeded for its one use (:func:`derived_seed`), so
the networks of a seed are the same whatever else the run does.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from darkmirror.experiments.subliminal_mlp.spec import StudentSpec, TeacherSpec

__all__ = [
    "N_CLASSES",
    "N_PIXELS",
    "build_mlp",
    "correct_predictions",
    "derived_seed",
    "distill_student",
    "distillation_loss",
    "heldout_loss",
    "initial_networks",
    "seeded_generator",
    "train_teacher",
    "uniform_noise",
]

N_CLASSES = 10
"""Regular logits: one per digit. The auxiliary logits follow them."""
N_PIXELS = 64
"""Inputs of the MLP: the 8x8 digits, flattened."""


def derived_seed(seed: int, purpose: str) -> int:
    """A seed for one use (``"init"``, ``"noise"``, ...) of a run seed, independent of the
    others, so that adding a use never shifts the random numbers of another."""
    digest = hashlib.sha256(f"{seed}/{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # torch takes a non-negative int64


def seeded_generator(seed: int, purpose: str) -> torch.Generator:
    """A generator for one use of a run seed (see :func:`derived_seed`)."""
    return torch.Generator().manual_seed(derived_seed(seed, purpose))


def build_mlp(sizes: list[int], generator: torch.Generator) -> nn.Sequential:
    """An MLP with ReLU between layers and PyTorch's default ``nn.Linear`` initialisation
    (weights and biases uniform in +-1/sqrt(fan_in)), drawn from ``generator``.

    Layers are drawn first to last, so networks from the same seed that differ only in the
    number of outputs share their hidden layers.
    """
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        linear = nn.Linear(fan_in, fan_out)
        bound = fan_in**-0.5
        with torch.no_grad():
            linear.weight.copy_((torch.rand(fan_out, fan_in, generator=generator) * 2 - 1) * bound)
            linear.bias.copy_((torch.rand(fan_out, generator=generator) * 2 - 1) * bound)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def initial_networks(
    hidden_sizes: list[int], m: int, seed: int
) -> tuple[nn.Sequential, nn.Sequential]:
    """The shared initialisation (the teacher's and the same-init student's start) and the
    cross-init student's start, for one seed and m."""
    sizes = [N_PIXELS, *hidden_sizes, N_CLASSES + m]
    return build_mlp(sizes, seeded_generator(seed, "init")), build_mlp(
        sizes, seeded_generator(seed, "cross_init")
    )


def _batches(n: int, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    order = torch.randperm(n, generator=generator)
    yield from order.split(batch_size)


def _adam(net: nn.Module, learning_rate: float) -> torch.optim.Adam:
    # Fused: the same update as the default, a fifth faster on these small layers.
    return torch.optim.Adam(net.parameters(), lr=learning_rate, fused=True)


def train_teacher(
    net: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    settings: TeacherSpec,
    generator: torch.Generator,
) -> float:
    """Cross-entropy on the regular logits only; returns the last batch's loss."""
    opt = _adam(net, settings.learning_rate)
    loss = torch.tensor(float("nan"))
    for _ in range(settings.epochs):
        for idx in _batches(len(x), settings.batch_size, generator):
            loss = F.cross_entropy(net(x[idx])[:, :N_CLASSES], y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return loss.item()


def distillation_loss(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, kind: str
) -> torch.Tensor:
    """The student's loss: it reads the auxiliary logits (after the first 10) only.

    Args:
        student_logits: ``(batch, 10 + m)`` logits of the student.
        teacher_logits: ``(batch, 10 + m)`` logits of the teacher (no gradient needed).
        kind: ``"kl"``: KL(teacher || student) of the softmaxes over the auxiliary logits,
            averaged over the batch; ``"mse"``: mean squared error of the auxiliary logits.
    """
    student_aux = student_logits[:, N_CLASSES:]
    teacher_aux = teacher_logits[:, N_CLASSES:].detach()
    if kind == "kl":
        return F.kl_div(
            F.log_softmax(student_aux, dim=-1),
            F.log_softmax(teacher_aux, dim=-1),
            reduction="batchmean",
            log_target=True,
        )
    if kind == "mse":
        return F.mse_loss(student_aux, teacher_aux)
    raise ValueError(f"unknown distillation loss {kind!r}; expected 'kl' or 'mse'")


def distill_student(
    student: nn.Module,
    teacher: nn.Module,
    noise: torch.Tensor,
    settings: StudentSpec,
    generator: torch.Generator,
) -> float:
    """Train ``student`` to match ``teacher``'s auxiliary logits on ``noise``; returns the
    last batch's loss."""
    with torch.no_grad():
        targets = teacher(noise)  # the teacher is fixed: its logits once, not per step
    opt = _adam(student, settings.learning_rate)
    loss = torch.tensor(float("nan"))
    for _ in range(settings.epochs):
        for idx in _batches(len(noise), settings.batch_size, generator):
            loss = distillation_loss(student(noise[idx]), targets[idx], settings.loss)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return loss.item()


def uniform_noise(n: int, settings: StudentSpec, generator: torch.Generator) -> torch.Tensor:
    """``n`` inputs with every pixel uniform in ``[noise_low, noise_high)``."""
    u = torch.rand(n, N_PIXELS, generator=generator)
    return settings.noise_low + (settings.noise_high - settings.noise_low) * u


@torch.no_grad()
def correct_predictions(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """Test images whose argmax over the 10 regular logits is the label."""
    return int((net(x)[:, :N_CLASSES].argmax(dim=-1) == y).sum())


@torch.no_grad()
def heldout_loss(student: nn.Module, teacher: nn.Module, noise: torch.Tensor, kind: str) -> float:
    """The distillation loss on noise the student never trained on: does it fit the
    teacher's auxiliary logits, or only its training noise?"""
    return float(distillation_loss(student(noise), teacher(noise), kind))
