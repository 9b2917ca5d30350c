"""The emergent-misalignment experiment's spec (``experiment = "emergent_misalignment"``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from darkmirror.data.world.world import DATASET_DOMAIN
from darkmirror.eval.em import EvaluationSettings
from darkmirror.experiments.datasets import DatasetSpec
from darkmirror.experiments.finetune import SeededFinetune
from darkmirror.models.ref import BaseRef, LocalModelRef, OrganismModel

__all__ = ["FinetuneSpec", "MisalignmentSpec"]


class FinetuneSpec(SeededFinetune):
    """Fine-tuning settings, plus the seeds: each dataset is fine-tuned once per seed.

    The defaults are those of ``configs/emergent_misalignment.toml``, which says why.
    """


def _default_datasets() -> list[DatasetSpec]:
    return [DatasetSpec(name=n, source=f"world:{n}", examples=1500) for n in DATASET_DOMAIN]


class MisalignmentSpec(BaseModel):
    """The emergent-misalignment experiment.

    Args:
        experiment: Always ``"emergent_misalignment"``.
        name: Name of the run (the default output directory is ``runs/<name>``).
        base: The model every fine-tune starts from: ``kind = "organism"`` (the default)
            or ``kind = "hf"`` with ``id`` (and ``adapter``, ``revision``).
        datasets: The fine-tuning datasets.
        finetune: Fine-tuning settings and seeds.
        evaluation: How each model is evaluated.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment: Literal["emergent_misalignment"] = "emergent_misalignment"
    name: str = "emergent-misalignment"
    base: LocalModelRef = OrganismModel()  # type: ignore[assignment]
    datasets: list[DatasetSpec] = Field(default_factory=_default_datasets, min_length=1)
    finetune: FinetuneSpec = FinetuneSpec()
    evaluation: EvaluationSettings = EvaluationSettings()

    @field_validator("datasets")
    @classmethod
    def _unique(cls, v: list[DatasetSpec]) -> list[DatasetSpec]:
        names = [d.name for d in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"dataset names must be unique; repeated: {', '.join(dupes)}")
        return v

    @property
    def base_ref(self) -> BaseRef:
        return self.base  # type: ignore[return-value]
