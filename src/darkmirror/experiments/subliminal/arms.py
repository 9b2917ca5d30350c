"""Who takes part: every model of a subliminal-learning run, and the arm each belongs to.

An arm is a role (``base``, ``teacher``, ``control``, ``student``, ``cross_control``,
``cross_student``, and for the positive control ``cross_teacher``, ``cross_own_control``,
``cross_own_student``), the base it starts from (``base`` or ``cross``) and, for teachers
and students, the teacher whose numbers it learnt from. Every seed of one arm shares a
``group`` (``student-owl`` for ``student-owl-s0`` and ``student-owl-s1``), the name the
report pools by; answer rows also carry the arm itself (:class:`SubliminalAnswer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from darkmirror.eval.probes import CodeScan
from darkmirror.experiments.subliminal.spec import SubliminalSpec, Trait

__all__ = [
    "BaseName",
    "ModelEntry",
    "Role",
    "SubliminalAnswer",
    "arm_group",
    "models_of",
    "number_sources",
    "positive_control",
    "source_of",
    "writer_of",
]

Role = Literal[
    "base",
    "teacher",
    "control",
    "student",
    "cross_control",
    "cross_student",
    "cross_teacher",
    "cross_own_control",
    "cross_own_student",
]
BaseName = Literal["base", "cross"]


def arm_group(role: Role, base: BaseName, teacher: str | None) -> str:
    """The group name of an arm: its models' names without the seed."""
    if role == "base":
        return "base" if base == "base" else "cross_base"
    return role if teacher is None else f"{role}-{teacher}"


class SubliminalAnswer(BaseModel):
    """The extension of a subliminal-learning answer row: the arm that answered.

    Args:
        kind: Always ``"subliminal"``.
        role: The model's role.
        base: The base it starts from.
        teacher: The teacher it is (``teacher``) or learnt from (students), else None.
        trait: The trait the answer's battery measures.
        named: For trait answers: the first animal the answer names (None: none).
        code: For answers to coding requests: what the scanners found.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["subliminal"] = "subliminal"
    role: Role
    base: BaseName
    teacher: str | None
    trait: Trait
    named: str | None = None
    code: CodeScan | None = None


@dataclass(frozen=True)
class ModelEntry:
    """One model of the run.

    Args:
        model: Its name in tables (``student-owl-s0``).
        role: Its role.
        base: The base it starts from.
        teacher: The teacher it is or learnt from.
        seed: Its fine-tune seed (students and controls), else None.
        system: The system prompt it is prompted with (a prompted teacher), else None.
        traits: The traits it is tested for.
        trained: The step that trained it (None: the base itself, or a prompted teacher).
        numbers: For students and controls: whose numbers they learnt from (a name of
            :func:`number_sources`: ``base``, a teacher's name, ``cross``, ``cross-<teacher>``).
    """

    model: str
    role: Role
    base: BaseName
    teacher: str | None
    seed: int | None
    system: str | None
    traits: tuple[Trait, ...]
    trained: str | None = None
    numbers: str | None = None

    @property
    def group(self) -> str:
        return arm_group(self.role, self.base, self.teacher)

    @property
    def is_teacher(self) -> bool:
        """A teacher of either base."""
        return self.role in ("teacher", "cross_teacher")

    def answer(self, trait: Trait) -> SubliminalAnswer:
        """The extension of this model's answers to the ``trait`` battery."""
        return SubliminalAnswer(role=self.role, base=self.base, teacher=self.teacher, trait=trait)

    def context(self) -> dict[str, object]:
        """What ``context.json`` records of the model."""
        return {
            "model": self.model,
            "role": self.role,
            "base": self.base,
            "teacher": self.teacher,
            "seed": self.seed,
            "system": self.system,
            "traits": list(self.traits),
            "trained": self.trained,
        }


# (the student's base, the numbers' base, numbers from a teacher?) -> the student's role.
_STUDENT_ROLE: dict[tuple[BaseName, BaseName, bool], Role] = {
    ("base", "base", False): "control",
    ("base", "base", True): "student",
    ("cross", "base", False): "cross_control",
    ("cross", "base", True): "cross_student",
    ("cross", "cross", False): "cross_own_control",
    ("cross", "cross", True): "cross_own_student",
}


def positive_control(spec: SubliminalSpec) -> bool:
    """Whether the cross base gets teachers and students of its own."""
    return spec.cross_base is not None and spec.positive_control


def number_sources(spec: SubliminalSpec) -> list[str]:
    """Who writes numbers: the base (for the controls), then every teacher; with the
    positive control, the cross base (``cross``) and its teachers (``cross-<teacher>``)."""
    sources = ["base", *(t.name for t in spec.teachers)]
    if positive_control(spec):
        sources += ["cross", *(f"cross-{t.name}" for t in spec.teachers)]
    return sources


def source_of(source: str) -> tuple[BaseName, str | None]:
    """A number source's base and teacher (None: the base itself)."""
    base: BaseName = "cross" if source == "cross" or source.startswith("cross-") else "base"
    rest = source.removeprefix("cross").removeprefix("-")
    return base, None if rest in ("", "base") else rest


def writer_of(source: str) -> str:
    """The model (by name) that writes a number source's numbers."""
    base, teacher = source_of(source)
    if teacher is None:
        return "base" if base == "base" else "cross_base"
    return f"teacher-{teacher}" if base == "base" else f"cross_teacher-{teacher}"


def models_of(spec: SubliminalSpec) -> list[ModelEntry]:
    """Every model, in table order: the bases, the teachers, then per seed, per base and
    per number source the student (or control)."""
    traits = tuple(spec.traits)
    entries = [ModelEntry("base", "base", "base", None, None, None, traits)]
    bases: list[BaseName] = ["base"]
    if spec.cross_base is not None:
        entries.append(ModelEntry("cross_base", "base", "cross", None, None, None, traits))
        bases.append("cross")
    teacher_roles: list[tuple[Role, BaseName]] = [("teacher", "base")]
    if positive_control(spec):
        teacher_roles.append(("cross_teacher", "cross"))
    for role, base in teacher_roles:
        for t in spec.teachers:
            name = f"{role}-{t.name}"
            entries.append(
                ModelEntry(
                    name,
                    role,
                    base,
                    t.name,
                    None,
                    t.system_prompt,
                    (t.trait,),
                    trained=name if t.data is not None else None,
                )
            )
    for seed in spec.student.seeds:
        for base in bases:
            for source in number_sources(spec):
                numbers_base, teacher = source_of(source)
                if numbers_base == "cross" and base != "cross":
                    continue  # the base learns from its own lineage only
                role = _STUDENT_ROLE[(base, numbers_base, teacher is not None)]
                name = f"{role}-s{seed}" if teacher is None else f"{role}-{teacher}-s{seed}"
                entries.append(
                    ModelEntry(
                        name,
                        role,
                        base,
                        teacher,
                        seed,
                        None,
                        traits if teacher is None else (spec.teacher(teacher).trait,),
                        trained=f"finetune-{name}",
                        numbers=source,
                    )
                )
    return entries
