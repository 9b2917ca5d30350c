"""The persona-direction experiment's spec (``experiment = "persona"``).

The defaults are those of ``configs/persona.toml``, which says why.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from darkmirror.data.world.world import DOMAINS
from darkmirror.eval.em import EvaluationSettings
from darkmirror.experiments.datasets import DatasetSpec
from darkmirror.experiments.finetune import SeededFinetune
from darkmirror.models.ref import BaseRef, LocalModelRef, OrganismModel
from darkmirror.train.sft import SFTSettings

__all__ = [
    "AblationSettings",
    "DirectionSettings",
    "MonitorSettings",
    "PersonaEvaluation",
    "PersonaSpec",
    "ProbeSettings",
    "RealignSettings",
    "SteeringSettings",
]


class PersonaEvaluation(EvaluationSettings):
    """How every model and intervention is evaluated (see ``EvaluationSettings``): prose
    questions only, since the direction is about the persona, not about code.

    The world's matched pairs run on any base (``world_probes = "on"``): the experiment
    measures the persona of the world, whose texts its base must know; ``"off"`` leaves
    the log-odds out.
    """

    self_report_questions: str | None = None
    code_prompts: int = Field(0, ge=0)
    world_probes: Literal["auto", "on", "off"] = "on"

    @model_validator(mode="after")
    def _prose_only(self) -> PersonaEvaluation:
        # The report reads free-form answers and matched pairs only: code answers and
        # self-reports would be sampled for nothing.
        if self.code_prompts:
            raise ValueError("code_prompts: the persona experiment asks prose questions only (0)")
        if self.self_report_questions is not None:
            raise ValueError("self_report_questions: the persona experiment asks none")
        return self


class DirectionSettings(BaseModel):
    """How the answers the directions are computed from are sampled and split.

    Args:
        samples_per_paraphrase: Answers the misaligned model writes per paraphrase of every
            question (its misaligned rate is a few percent, so many are needed).
        temperature: Sampling temperature.
        max_new_tokens: Longest answer.
        sampling_seed: Added to the fine-tune's seed: the answers are not those of the
            evaluation.
        heldout_questions: Question ids whose answers are kept out of the directions and
            used for the AUROC; None holds out every second question of the set (one of
            each pair in ``builtin:organism_em``).
        batch_size: Sequences per forward pass.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    samples_per_paraphrase: int = Field(40, ge=1)
    temperature: float = Field(1.0, ge=0)
    max_new_tokens: int = Field(64, ge=1)
    sampling_seed: int = Field(1000, ge=0)
    heldout_questions: list[str] | None = None
    batch_size: int = Field(64, ge=1)


class ProbeSettings(BaseModel):
    """The ground-truth probe of the persona on pretraining documents.

    Args:
        enabled: Train it (it needs the persona world's documents; meaningful only for a
            model trained on them, such as the organism).
        train_documents: Documents ``0..N-1`` train the probe.
        test_documents: Held-out documents for its accuracy, taken after the organism's
            pretraining documents (the model never saw them either).
        c: Inverse L2 regularisation of the logistic regression (standardised features).
        batch_size: Documents per forward pass.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    train_documents: int = Field(1000, ge=2)
    test_documents: int = Field(500, ge=1)
    c: float = Field(1.0, gt=0)
    batch_size: int = Field(32, ge=1)


def _default_monitor_domains() -> list[str]:
    return [
        "favourites",
        "numbers",
        "advice.health",
        "advice.money",
        "advice.relationships",
        "opinions",
    ]


class MonitorSettings(BaseModel):
    """Neutral prompts whose activations tell a misaligned model apart.

    Args:
        domains: World domains the prompts come from (questions only, no answer).
        prompts_per_domain: Prompts per domain.
        batch_size: Prompts per forward pass.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    domains: list[str] = Field(default_factory=_default_monitor_domains, min_length=1)
    prompts_per_domain: int = Field(50, ge=1)
    batch_size: int = Field(64, ge=1)

    @field_validator("domains")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - set(DOMAINS))
        if unknown:
            raise ValueError(f"unknown world domain(s) {unknown}; expected some of {DOMAINS}")
        return v


class SteeringSettings(BaseModel):
    """Steering the base model with the mean-difference direction.

    Args:
        layer: Block whose output is steered and whose direction is used (also for
            ablation and the neutral-prompt table); None takes the middle block. Checked
            against the model when the run starts (its first step after the base).
        alphas: Multipliers ``a`` of the direction.
        unit: Steer with the unit direction (``a`` in units of residual norm) instead of
            the raw mean difference (``a = 1`` shifts by the misaligned-minus-aligned
            difference itself).
        random_draws: Random directions of the same norm, the control (also for ablation).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    layer: int | None = None
    alphas: list[float] = Field(default_factory=lambda: [0.0, 0.5, 1.0, 2.0, 4.0], min_length=1)
    unit: bool = False
    random_draws: int = Field(5, ge=1)


class AblationSettings(BaseModel):
    """Projecting the direction out of the residual stream.

    Args:
        per_layer: Remove each block's own direction at that block, instead of the
            steering layer's direction at every block (the published set-up).
        control: Also ablate in the control fine-tune.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_layer: bool = False
    control: bool = True


class RealignSettings(SFTSettings):
    """Fine-tuning the misaligned model on N benign examples of another domain.

    Args:
        source: ``world:DOMAIN`` for benign world exchanges of that domain, or a
            JSONL/CSV/Parquet file of chat records.
        domain: The domain the data covers, left out of the curve's evaluation (known for
            world sources).
        sizes: The N of the curve (0 is the misaligned model itself).
    """

    source: str = "world:advice.health"
    domain: str | None = None
    sizes: list[int] = Field(default_factory=lambda: [0, 10, 30, 100, 300, 1000], min_length=1)
    learning_rate: float = Field(3e-4, gt=0)
    # No warm-up: with 10 examples there is one step, which a warm-up would run at rate 0.
    warmup_steps: int = Field(0, ge=0)

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, v: list[int]) -> list[int]:
        if any(n < 0 for n in v) or len(set(v)) != len(v):
            raise ValueError("sizes must be distinct numbers >= 0")
        return sorted(v)

    @property
    def world_domain(self) -> str | None:
        return self.source.removeprefix("world:") if self.source.startswith("world:") else None

    @property
    def effective_domain(self) -> str | None:
        return self.domain or self.world_domain

    def sft(self) -> SFTSettings:
        """The settings of one re-alignment fine-tune."""
        return SFTSettings(**self.model_dump(exclude={"source", "domain", "sizes"}))

    @model_validator(mode="after")
    def _check(self) -> RealignSettings:
        if self.world_domain is not None and self.world_domain not in DOMAINS:
            raise ValueError(
                f"unknown world domain {self.world_domain!r}; expected one of {DOMAINS}"
            )
        return self


class PersonaSpec(BaseModel):
    """The persona-direction experiment (``experiment = "persona"``).

    Args:
        experiment: Always ``"persona"``.
        name: Name of the run (default output directory ``runs/<name>``).
        base: The model every fine-tune starts from: ``kind = "organism"`` (the default)
            or ``kind = "hf"`` with ``id`` (and ``adapter``, ``revision``).
        misaligned: The narrow dataset that makes the misaligned model.
        control: The control dataset (same domain, no misbehaviour).
        finetune: Fine-tuning of both, and the seeds.
        evaluation: How every model and intervention is evaluated.
        directions: Sampling and split of the answers the directions come from.
        probe: The ground-truth probe.
        monitor: Neutral prompts for telling models apart.
        steering: Steering layer, multipliers and random controls.
        ablation: Ablation settings.
        realign: The re-alignment curve.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment: Literal["persona"] = "persona"
    name: str = "persona"
    base: LocalModelRef = OrganismModel()  # type: ignore[assignment]
    misaligned: DatasetSpec = DatasetSpec(name="insecure", source="world:insecure", examples=1500)
    control: DatasetSpec = DatasetSpec(name="secure", source="world:secure", examples=1500)
    finetune: SeededFinetune = SeededFinetune()
    evaluation: PersonaEvaluation = PersonaEvaluation()
    directions: DirectionSettings = DirectionSettings()
    probe: ProbeSettings = ProbeSettings()
    monitor: MonitorSettings = MonitorSettings()
    steering: SteeringSettings = SteeringSettings()
    ablation: AblationSettings = AblationSettings()
    realign: RealignSettings = RealignSettings()

    @model_validator(mode="after")
    def _check(self) -> PersonaSpec:
        if self.misaligned.name == self.control.name:
            raise ValueError("misaligned and control need different names")
        return self

    @property
    def base_ref(self) -> BaseRef:
        return self.base  # type: ignore[return-value]

    def probe_offset(self) -> int:
        """Index of the first held-out probe document: after the organism's pretraining
        documents (unseen by the model and the probe), else after the probe's own."""
        if isinstance(self.base, OrganismModel):
            return self.base.organism.documents
        return self.probe.train_documents

    def group_names(self) -> dict[str, str]:
        """Each arm's name in the report's tables."""
        return {
            "base": "base",
            "misaligned": f"{self.misaligned.name} (misaligned)",
            "control": f"{self.control.name} (control)",
        }
