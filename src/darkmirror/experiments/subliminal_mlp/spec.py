"""The subliminal-learning MLP experiment's spec (``experiment = "subliminal_mlp"``).

The defaults are those of ``configs/subliminal_mlp.toml``, which says why.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["StudentSpec", "SubliminalMLPSpec", "TeacherSpec"]


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
