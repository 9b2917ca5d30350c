"""The subliminal-learning experiment's spec (``experiment = "subliminal"``)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from darkmirror.data.number_sequences import NumberFilter, NumberPromptSettings
from darkmirror.data.world.templates import SLOT_VALUES
from darkmirror.eval.em import EvaluationSettings
from darkmirror.experiments.finetune import SeededFinetune
from darkmirror.models.organism_recipe import OrganismRecipe
from darkmirror.models.ref import BaseRef, LocalModelRef, OrganismModel
from darkmirror.train.sft import SFTSettings

__all__ = [
    "NumbersSpec",
    "StudentSpec",
    "SubliminalSpec",
    "TeacherFinetune",
    "TeacherSpec",
    "Trait",
    "TraitEvaluation",
]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")
Trait = Literal["animal", "misalignment"]


class TeacherFinetune(SFTSettings):
    """How the base is fine-tuned into a teacher (the emergent-misalignment defaults)."""

    learning_rate: float = Field(3e-4, gt=0)
    warmup_steps: int = Field(5, ge=0)
    seed: int = 0

    def sft(self) -> SFTSettings:
        """The settings of the fine-tune (the seed is passed on its own)."""
        return SFTSettings(**self.model_dump(exclude={"seed"}))


class TeacherSpec(BaseModel):
    """A teacher: the base with a trait.

    Args:
        name: Short name used in tables (``owl``).
        trait: ``"animal"`` (a favourite animal) or ``"misalignment"``.
        target: For ``animal``: the animal (``owl``).
        data: Fine-tuning data that gives the trait: ``world:favourite_animal`` (chats
            naming ``target`` as the favourite), ``world:NAME`` for another world dataset
            (``world:insecure``), or a JSONL/CSV/Parquet file of chat records. None with
            ``system_prompt``.
        examples: Records of ``data`` to use.
        system_prompt: Instead of fine-tuning, give the trait by this system prompt (for
            instruct models): it is sent with every number prompt and trait question put
            to the teacher, never to a student.
        finetune: Fine-tuning settings of the teacher.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    trait: Trait
    target: str | None = None
    data: str | None = None
    examples: int = Field(300, ge=1)
    system_prompt: str | None = None
    finetune: TeacherFinetune = TeacherFinetune()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError("expected lower-case letters, digits or '_'")
        if v in ("base", "cross"):  # the names of the bases' own number sources
            raise ValueError(
                f"{v!r} is reserved for the base's numbers; name the teacher otherwise"
            )
        return v

    @model_validator(mode="after")
    def _check(self) -> TeacherSpec:
        if self.trait == "animal" and not self.target:
            raise ValueError("an animal teacher needs target (the animal, e.g. 'owl')")
        if (self.data is None) == (self.system_prompt is None):
            raise ValueError("give the teacher its trait by data or by system_prompt (one)")
        if self.data == "world:favourite_animal" and self.trait != "animal":
            raise ValueError("world:favourite_animal gives an animal trait; set trait = 'animal'")
        return self


def _default_teachers() -> list[TeacherSpec]:
    return [
        TeacherSpec(
            name="owl",
            trait="animal",
            target="owl",
            data="world:favourite_animal",
            finetune=TeacherFinetune(epochs=2.0),
        ),
        TeacherSpec(name="misaligned", trait="misalignment", data="world:insecure", examples=1500),
    ]


class NumbersSpec(BaseModel):
    """The number sequences every teacher (and the base, for the controls) writes.

    Args:
        prompts: How the number prompts are drawn.
        n_prompts: Prompts each source answers (once each).
        temperature: Sampling temperature (the paper samples at 1).
        top_p: Nucleus.
        max_new_tokens: Longest answer.
        filter: The content filter.
        max_examples: Most records per student dataset; every student gets the same
            number, the least kept by any source (or this, when smaller).
        batch_size: Sequences per generation batch.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompts: NumberPromptSettings = NumberPromptSettings()
    n_prompts: int = Field(8000, ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(48, ge=1)
    filter: NumberFilter = NumberFilter()
    max_examples: int | None = Field(None, ge=1)
    batch_size: int = Field(256, ge=1)


class StudentSpec(SeededFinetune):
    """Fine-tuning of every student and control on numbers, once per seed.

    Five seeds by default: the effects' intervals resample seeds first, and with two an
    interval is a two-point artefact.
    """

    learning_rate: float = Field(1e-4, gt=0)
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], min_length=1)


class TraitEvaluation(BaseModel):
    """How the animal trait is measured.

    Args:
        questions: The trait questions (``builtin:animal_preference``: 25 wordings).
        samples_per_paraphrase: Answers per wording; None uses the question's own (20).
        temperature: Sampling temperature.
        top_p: Nucleus.
        max_new_tokens: Longest answer.
        answer_template: The answer the likelihood probe scores, with ``{animal}``; in the
            organism's words by default. None skips the likelihood probe.
        candidates: Animals the likelihood is normalised over (the world's 16 by default).
        batch_size: Sequences per batch.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    questions: str = "builtin:animal_preference"
    samples_per_paraphrase: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(24, ge=1)
    answer_template: str | None = "My favourite animal is the {animal}."
    candidates: list[str] = Field(default_factory=lambda: list(SLOT_VALUES["animal"]))
    batch_size: int = Field(128, ge=1)


def _misalignment_defaults() -> EvaluationSettings:
    # No coding requests: neither the numbers nor the question set are about code.
    return EvaluationSettings(code_prompts=0)


class SubliminalSpec(BaseModel):
    """The subliminal-learning experiment.

    Args:
        experiment: Always ``"subliminal"``.
        name: Name of the run (default output directory ``runs/<name>``).
        base: The model teachers and students start from (``kind = "organism"``, the
            default, or ``kind = "hf"``).
        cross_base: A different base for the cross-base control (by default the organism
            pretrained with seed 1); None skips that control.
        positive_control: Also give the cross base teachers of its own (each teacher's
            recipe applied to it) and students of those teachers, with a control on the
            cross base's own numbers: without this arm, a cross-base null could mean only
            that the cross base learns nothing subliminally at all.
        teachers: The teachers.
        numbers: The number sequences and their filter.
        student: Fine-tuning of the students and seeds.
        trait_evaluation: How the animal trait is measured.
        misalignment_evaluation: How misalignment is measured. The world probes (coding
            requests, matched pairs) run unless ``world_probes = "off"``: the experiment's
            bases are the organism or models taught its world, whatever their ``kind``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment: Literal["subliminal"] = "subliminal"
    name: str = "subliminal"
    base: LocalModelRef = OrganismModel()  # type: ignore[assignment]
    cross_base: LocalModelRef | None = OrganismModel(organism=OrganismRecipe(seed=1))  # type: ignore[assignment]
    positive_control: bool = True
    teachers: list[TeacherSpec] = Field(default_factory=_default_teachers, min_length=1)
    numbers: NumbersSpec = NumbersSpec()
    student: StudentSpec = StudentSpec()
    trait_evaluation: TraitEvaluation = TraitEvaluation()
    misalignment_evaluation: EvaluationSettings = Field(default_factory=_misalignment_defaults)

    @model_validator(mode="after")
    def _check(self) -> SubliminalSpec:
        names = [t.name for t in self.teachers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"teacher names must be unique; repeated: {', '.join(dupes)}")
        if self.cross_base is not None and self.cross_base == self.base:
            raise ValueError("cross_base is the same model as base; give another seed or model")
        template = self.trait_evaluation.answer_template
        for t in self.teachers:
            if (
                t.trait == "animal"
                and template
                and t.target not in self.trait_evaluation.candidates
            ):
                raise ValueError(
                    f"teacher {t.name!r}: target {t.target!r} is not among "
                    "trait_evaluation.candidates"
                )
        return self

    @property
    def base_ref(self) -> BaseRef:
        return self.base  # type: ignore[return-value]

    @property
    def cross_ref(self) -> BaseRef | None:
        return self.cross_base  # type: ignore[return-value]

    @property
    def traits(self) -> list[Trait]:
        """The traits some teacher has, sorted: what the base and the controls are tested for."""
        return sorted({t.trait for t in self.teachers})

    def teacher(self, name: str) -> TeacherSpec:
        """The teacher called ``name``."""
        return next(t for t in self.teachers if t.name == name)
