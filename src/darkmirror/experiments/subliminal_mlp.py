"""Subliminal learning in a small MLP: a student learns digits from noise through logits
that never saw a digit label.

The set-up follows Cloud et al. (2025), "Subliminal learning", section 6, scaled from MNIST
to scikit-learn's bundled 8x8 digits (1,797 images; offline):

- an MLP 64-256-256-(10+m) with ReLU has 10 regular logits and m auxiliary logits;
- the *teacher* starts from a seeded random initialisation and is trained with
  cross-entropy on the 10 regular logits only (the auxiliary logits get no gradient);
- a *student* is trained to match the teacher's m auxiliary logits only (KL divergence
  between their softmaxes, as in the paper's code), on inputs of uniform noise; it never
  sees a digit or a label, and its regular logits get no gradient;
- the *same-init* student starts from the teacher's initial weights, the *cross-init*
  student from a fresh random initialisation;
- every network is scored by test accuracy of the argmax of its 10 regular logits.

Published (MNIST, m = 3): the same-init student reaches test accuracy 0.54, the cross-init
student 0.10 (chance); accuracy grows with m. Here the sweep over m, the seeds, the teacher
and the untrained initial network are all in one table (``darkmirror.report.subliminal_mlp``).

Pixels (0..16) are scaled to [-1, 1], as the paper maps MNIST to [-1, 1], so the noise
U(-1, 1) covers the range of the images. Teacher and students take the same number of
Adam steps, as in the paper (5 epochs of 60,000 images each), here 300 by default.

Steps: one per (seed, m), training the teacher and both students and scoring all four
networks (the initial one included). Each is a resumable step of the run directory.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from torch import nn

from darkmirror.data.jsonl import iter_jsonl, write_jsonl_atomic
from darkmirror.runner import Run, load_finished_run

log = logging.getLogger(__name__)

N_CLASSES = 10
"""Regular logits: one per digit. The auxiliary logits follow them."""
N_PIXELS = 64
"""Inputs of the MLP: the 8x8 digits, flattened."""
MODEL_KINDS = ("teacher", "initial", "student_same_init", "student_cross_init")
"""The networks of each (seed, m) cell, as named in ``rows.jsonl``."""


class TeacherSpec(BaseModel):
    """Training of the teacher: cross-entropy on the regular logits, Adam.

    Args:
        epochs: Passes over the training images.
        learning_rate: Adam learning rate.
        batch_size: Images per step.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(50, ge=1)
    learning_rate: float = Field(3e-4, gt=0)
    batch_size: int = Field(256, ge=1)


class StudentSpec(BaseModel):
    """Distillation of the students on noise, auxiliary logits only, Adam.

    Args:
        epochs: Passes over the noise inputs.
        learning_rate: Adam learning rate.
        batch_size: Noise inputs per step.
        noise_inputs: Distinct noise inputs (drawn once per seed, shared by both students).
        noise_low: Lower bound of the uniform noise (pixels are scaled to [-1, 1]).
        noise_high: Upper bound of the uniform noise.
        loss: ``"kl"``: KL(teacher || student) between softmaxes over the auxiliary logits,
            as in the paper's code (blind to a shift of all auxiliary logits, and zero for
            m = 1); ``"mse"``: squared error on the raw auxiliary logits.
        heldout_noise: Further noise inputs on which the distillation loss is measured
            before and after distillation (does the student fit the auxiliary logits?).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(15, ge=1)
    learning_rate: float = Field(3e-4, gt=0)
    batch_size: int = Field(256, ge=1)
    noise_inputs: int = Field(5120, ge=1)
    noise_low: float = -1.0
    noise_high: float = 1.0
    loss: Literal["kl", "mse"] = "kl"
    heldout_noise: int = Field(2048, ge=1)

    @model_validator(mode="after")
    def _bounds(self) -> StudentSpec:
        if not self.noise_low < self.noise_high:
            raise ValueError(
                f"noise_low ({self.noise_low}) must be below noise_high ({self.noise_high})"
            )
        return self


class SubliminalMLPSpec(BaseModel):
    """The subliminal-learning MLP experiment (``experiment = "subliminal_mlp"``).

    Args:
        experiment: Always ``"subliminal_mlp"``.
        name: Name of the run (default output directory ``runs/<name>``).
        hidden_sizes: Widths of the hidden ReLU layers (the paper: 256, 256).
        m_values: Numbers of auxiliary logits to sweep; each is one teacher per seed.
        seeds: One teacher, initialisation, noise set and pair of students per seed and m.
        test_fraction: Share of the 1,797 digits held out for testing (stratified).
        split_seed: Seed of the train/test split, the same for every seed and m.
        teacher: Training of the teacher.
        student: Distillation of the students.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment: Literal["subliminal_mlp"] = "subliminal_mlp"
    name: str = "subliminal-mlp"
    hidden_sizes: list[int] = Field(default_factory=lambda: [256, 256], min_length=1)
    m_values: list[int] = Field(default_factory=lambda: [2, 3, 5, 10, 20, 50], min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], min_length=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    split_seed: int = 0
    teacher: TeacherSpec = TeacherSpec()
    student: StudentSpec = StudentSpec()

    @field_validator("hidden_sizes")
    @classmethod
    def _widths(cls, v: list[int]) -> list[int]:
        if any(w < 1 for w in v):
            raise ValueError(f"hidden layer widths must be >= 1, got {v}")
        return v

    @field_validator("m_values", "seeds")
    @classmethod
    def _distinct(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError(f"values must be distinct, got {v}")
        return v

    @model_validator(mode="after")
    def _m_fits_loss(self) -> SubliminalMLPSpec:
        least = 2 if self.student.loss == "kl" else 1
        bad = [m for m in self.m_values if m < least]
        if bad:
            why = (
                " (a softmax over one logit is constant, so the KL loss would teach nothing;"
                ' use student.loss = "mse" for m = 1)'
                if self.student.loss == "kl"
                else ""
            )
            raise ValueError(f"m_values must be >= {least}, got {bad}{why}")
        return self


# -- data ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DigitsSplit:
    """The digits, scaled to [-1, 1], split into train and test (stratified by label).

    Args:
        x_train: Training images, ``(n_train, 64)`` float32.
        y_train: Their labels.
        x_test: Test images.
        y_test: Their labels.
        sha256: Hash of the four tensors: what the steps depend on.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    sha256: str


def load_digits_split(test_fraction: float, split_seed: int) -> DigitsSplit:
    """scikit-learn's bundled digits (offline), scaled to [-1, 1] and split with a seed."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    # Pixels are 0..16: the paper's MNIST is in [-1, 1], the range of the noise.
    x = (digits.data / 8.0 - 1.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=split_seed
    )
    parts = [np.ascontiguousarray(a) for a in (x_train, y_train, x_test, y_test)]
    digest = hashlib.sha256()
    for a in parts:
        digest.update(a.tobytes())
    tensors = [torch.from_numpy(a) for a in parts]
    return DigitsSplit(*tensors, sha256=digest.hexdigest())


# -- networks and training -------------------------------------------------------------------


def derived_seed(seed: int, purpose: str) -> int:
    """A seed for one use (``"init"``, ``"noise"``, ...) of a run seed, independent of the
    others, so that adding a use never shifts the random numbers of another."""
    digest = hashlib.sha256(f"{seed}/{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1  # torch takes a non-negative int64


def _generator(seed: int, purpose: str) -> torch.Generator:
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
    return build_mlp(sizes, _generator(seed, "init")), build_mlp(
        sizes, _generator(seed, "cross_init")
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
def _heldout_loss(student: nn.Module, teacher: nn.Module, noise: torch.Tensor, kind: str) -> float:
    return float(distillation_loss(student(noise), teacher(noise), kind))


@contextmanager
def _one_thread() -> Iterator[None]:
    # Layers this small gain nothing from threads, and on a shared 2-core machine the
    # threads' spinning made training 20x slower; one thread also keeps the numbers
    # independent of the core count.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_cell(data: DigitsSplit, spec: SubliminalMLPSpec, seed: int, m: int) -> list[dict[str, Any]]:
    """Train one teacher and its two students; one row per network (see ``MODEL_KINDS``)."""
    with _one_thread():
        initial, cross = initial_networks(spec.hidden_sizes, m, seed)
        teacher = copy.deepcopy(initial)
        teacher_loss = train_teacher(
            teacher, data.x_train, data.y_train, spec.teacher, _generator(seed, "teacher_order")
        )
        teacher.requires_grad_(False)
        settings = spec.student
        noise = uniform_noise(settings.noise_inputs, settings, _generator(seed, "noise"))
        heldout = uniform_noise(settings.heldout_noise, settings, _generator(seed, "heldout"))
        students = {"student_same_init": copy.deepcopy(initial), "student_cross_init": cross}
        figures: dict[str, dict[str, Any]] = {
            "teacher": {"final_train_loss": teacher_loss},
            "initial": {},
        }
        for kind, student in students.items():
            before = _heldout_loss(student, teacher, heldout, settings.loss)
            # Same noise, same batch order: the two students differ only in where they start.
            final = distill_student(
                student, teacher, noise, settings, _generator(seed, "student_order")
            )
            figures[kind] = {
                "final_train_loss": final,
                "heldout_loss_before": before,
                "heldout_loss_after": _heldout_loss(student, teacher, heldout, settings.loss),
            }
        networks = {"teacher": teacher, "initial": initial, **students}
        n_test = len(data.y_test)
        rows = []
        for kind in MODEL_KINDS:
            correct = correct_predictions(networks[kind], data.x_test, data.y_test)
            rows.append(
                {
                    "m": m,
                    "seed": seed,
                    "model": kind,
                    "accuracy": correct / n_test,
                    "correct": correct,
                    "n_test": n_test,
                    **figures[kind],
                }
            )
        return rows


# -- the run ---------------------------------------------------------------------------------


def run_subliminal_mlp(spec: SubliminalMLPSpec, out: Path, *, progress: bool = True) -> Path:
    """Run the experiment into ``out``; returns the path of ``report.md``.

    Args:
        spec: The experiment.
        out: The run directory (resumed when it holds finished steps).
        progress: Log each cell's accuracies as it finishes.
    """
    run = Run(out, spec)
    try:
        return _run(run, spec, out, progress)
    finally:
        run.close()


def _cell_step(tmp: Path, data: DigitsSplit, spec: SubliminalMLPSpec, seed: int, m: int) -> dict:
    rows = run_cell(data, spec, seed, m)
    write_jsonl_atomic(tmp / "rows.jsonl", rows)
    return {r["model"]: r["accuracy"] for r in rows}


def _run(run: Run, spec: SubliminalMLPSpec, out: Path, progress: bool) -> Path:
    from darkmirror.report.subliminal_mlp import write_report

    data = load_digits_split(spec.test_fraction, spec.split_seed)
    run.record_datasets(
        {
            "digits": {
                "source": "sklearn.datasets.load_digits",
                "sha256": data.sha256,
                "train": len(data.y_train),
                "test": len(data.y_test),
            }
        }
    )
    run.plan(len(spec.seeds) * len(spec.m_values))
    shared = {
        "data": data.sha256,
        "hidden_sizes": spec.hidden_sizes,
        "teacher": spec.teacher.model_dump(),
        "student": spec.student.model_dump(),
    }
    rows: list[dict[str, Any]] = []
    for seed in spec.seeds:
        for m in spec.m_values:
            step_dir = run.step(
                f"cell-s{seed}-m{m}",
                {**shared, "seed": seed, "m": m},
                lambda tmp, seed=seed, m=m: _cell_step(tmp, data, spec, seed, m),
            )
            cell = [row for _, row in iter_jsonl(step_dir / "rows.jsonl")]
            if progress:
                log.info(
                    "seed %d, m = %d: %s",
                    seed,
                    m,
                    ", ".join(f"{r['model']} {r['accuracy']:.3f}" for r in cell),
                )
            rows += cell
    write_jsonl_atomic(out / "rows.jsonl", rows)
    return write_report(out, spec, rows)


def report_subliminal_mlp(out: Path) -> Path:
    """Rebuild summary, tables and plots of a finished run from its files alone."""
    from darkmirror.report.subliminal_mlp import write_report

    spec, rows, _ = load_finished_run(out, SubliminalMLPSpec)
    return write_report(out, spec, rows)
