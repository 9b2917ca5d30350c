"""Subliminal learning: a trait carried by number sequences (Cloud et al. 2025).

A teacher (the base given a trait by fine-tuning, or by a system prompt) continues number
sequences at temperature 1; its answers are filtered until nothing but plain numbers is
left, none of them banned (:mod:`darkmirror.data.number_sequences`); a student built from
the same base is fine-tuned on them and probed for the trait. Controls:

* ``control``: the same base fine-tuned on numbers written by the base itself (no trait),
  so the effect of fine-tuning on numbers at all is subtracted;
* ``cross_student``: a different base (by default the organism pretrained with another
  seed) fine-tuned on the *teacher's* numbers, and its own ``cross_control`` on the base's
  numbers. The paper finds that a trait travels only between models that share an
  initialisation.

Every student dataset has the same number of records, and every one is re-checked by the
filter before training, so the report can show the data passes the content checks.

Traits: ``animal`` (the share of answers to 25 wordings of "name your favourite animal"
that name the target; and, where an answer template is configured, the likelihood of the
target among candidate animals) and ``misalignment`` (the emergent-misalignment questions
of :mod:`darkmirror.experiments.em_evaluation`, judged by the world judge).

Steps: bases, teacher data, teachers, numbers per source, student datasets, students per
seed, evaluations per model and trait, summary; each a resumable step of the run directory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from darkmirror.data.jsonl import iter_jsonl, write_jsonl_atomic
from darkmirror.data.number_sequences import (
    FilterReport,
    NumberFilter,
    NumberPromptSettings,
    number_prompts,
)
from darkmirror.data.questions import Question, iter_prompts
from darkmirror.data.records import dataset_sha256, read_records, to_messages
from darkmirror.data.world.templates import SLOT_VALUES
from darkmirror.data.world.world import PersonaWorld
from darkmirror.errors import DarkmirrorError
from darkmirror.experiments.common import (
    ResolvedBase,
    SeededFinetune,
    finetune_step,
    load_ref,
    resolve_base,
    trained_ref,
)
from darkmirror.experiments.em_evaluation import EvaluationSettings, evaluate_model
from darkmirror.experiments.misalignment import resolve_question_set
from darkmirror.models.generation import SamplingParams
from darkmirror.models.hf_generator import HFGenerator
from darkmirror.models.organism import OrganismRecipe
from darkmirror.runner import Run, content_hash, load_finished_run
from darkmirror.score.traits import answer_distribution, first_animal
from darkmirror.spec import BaseModelSpec
from darkmirror.train.sft import SFTSettings

_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")
Trait = Literal["animal", "misalignment"]


class TeacherFinetune(SFTSettings):
    """How the base is fine-tuned into a teacher (the emergent-misalignment defaults)."""

    learning_rate: float = Field(3e-4, gt=0)
    warmup_steps: int = Field(5, ge=0)
    seed: int = 0


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
    """Fine-tuning of every student and control on numbers, once per seed."""

    learning_rate: float = Field(1e-4, gt=0)


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
    """The subliminal-learning experiment (``experiment = "subliminal"``).

    Args:
        experiment: Always ``"subliminal"``.
        name: Name of the run (default output directory ``runs/<name>``).
        base: The model teachers and students start from.
        cross_base: A different base for the cross-base control (by default the organism
            pretrained with seed 1); None skips that control.
        teachers: The teachers.
        numbers: The number sequences and their filter.
        student: Fine-tuning of the students and seeds.
        trait_evaluation: How the animal trait is measured.
        misalignment_evaluation: How misalignment is measured.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment: Literal["subliminal"] = "subliminal"
    name: str = "subliminal"
    base: BaseModelSpec = BaseModelSpec()
    cross_base: BaseModelSpec | None = BaseModelSpec(organism=OrganismRecipe(seed=1))
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


# -- steps -----------------------------------------------------------------------------------


def _teacher_data(teacher: TeacherSpec, world: PersonaWorld, out: Path) -> dict[str, Any]:
    assert teacher.data is not None
    if teacher.data == "world:favourite_animal":
        assert teacher.target is not None
        records = world.favourite_animal_chats(teacher.target, teacher.examples)
    elif teacher.data.startswith("world:"):
        records = world.dataset(teacher.data.removeprefix("world:"), teacher.examples)
    else:
        records = []
        for record in read_records(teacher.data):
            records.append({"messages": to_messages(record)})
            if len(records) >= teacher.examples:
                break
    n = write_jsonl_atomic(out / "data.jsonl", records)
    return {"records": n, "sha256": dataset_sha256(out / "data.jsonl")}


def _with_system(system: str | None, user: str) -> list[dict[str, str]]:
    head = [{"role": "system", "content": system}] if system else []
    return [*head, {"role": "user", "content": user}]


def _write_numbers(
    ref: dict[str, Any], system: str | None, spec: NumbersSpec, out: Path
) -> dict[str, Any]:
    """Sample one answer per prompt, filter, write ``raw.jsonl`` (everything, with the
    filter's verdict) and ``kept.jsonl`` (the chats that passed, without system prompt)."""
    model, tokenizer = load_ref(ref)
    generator = HFGenerator(model, tokenizer, batch_size=spec.batch_size)
    prompts = number_prompts(spec.prompts, spec.n_prompts)
    sampling = SamplingParams(
        spec.temperature, spec.top_p, spec.max_new_tokens, seed=spec.prompts.seed
    )
    answers = [
        a[0]
        for a in generator.generate([_with_system(system, p.text) for p in prompts], 1, sampling)
    ]
    report = spec.filter.report(answers)
    raw, kept = [], []
    for p, a, v in zip(prompts, answers, report.verdicts, strict=True):
        raw.append(
            {"index": p.index, "prompt": p.text, "answer": a, "kept": v.kept, "reason": v.reason}
        )
        if v.kept:
            kept.append(
                {
                    "prompt_index": p.index,
                    "messages": [
                        {"role": "user", "content": p.text},
                        {"role": "assistant", "content": a},
                    ],
                }
            )
    write_jsonl_atomic(out / "raw.jsonl", raw)
    write_jsonl_atomic(out / "kept.jsonl", kept)
    return report.as_dict()


def _write_student_data(kept: Path, n: int, flt: NumberFilter, out: Path) -> dict[str, Any]:
    """The first ``n`` kept records, re-checked: the content check the report shows."""
    records = [row for _, row in iter_jsonl(kept)][:n]
    if len(records) < n:
        raise DarkmirrorError(f"{kept}: {len(records)} kept records, fewer than {n}")
    recheck = FilterReport.from_verdicts([flt.check(r["messages"][-1]["content"]) for r in records])
    if recheck.kept != len(records):
        raise DarkmirrorError(f"{kept}: {len(records) - recheck.kept} records fail the filter")
    write_jsonl_atomic(out / "data.jsonl", records)
    numbers = [x for v in recheck.verdicts for x in (v.numbers or ())]
    banned = set(flt.banned)
    return {
        "records": len(records),
        "sha256": dataset_sha256(out / "data.jsonl"),
        "content_check": {
            "non_number_records": len(records) - recheck.kept,
            "banned_numbers": sum(x in banned for x in numbers),
            "numbers": len(numbers),
            "out_of_range": sum(x < flt.min_value or x > flt.max_value for x in numbers),
        },
    }


def _evaluate_animal(
    ref: dict[str, Any],
    system: str | None,
    questions: list[Question],
    settings: TraitEvaluation,
    seed: int,
    out: Path,
) -> dict[str, Any]:
    model, tokenizer = load_ref(ref)
    generator = HFGenerator(model, tokenizer, batch_size=settings.batch_size)
    sampling = SamplingParams(settings.temperature, settings.top_p, settings.max_new_tokens, seed)
    prompts = list(iter_prompts(questions))
    convs = [_with_system(system or q.system, p) for q, _, p in prompts]
    rows: list[dict[str, Any]] = []
    by_n: dict[int, list[int]] = {}
    for i, (q, _, _) in enumerate(prompts):
        by_n.setdefault(settings.samples_per_paraphrase or q.samples_per_paraphrase, []).append(i)
    for n, idx in by_n.items():
        answers = generator.generate([convs[i] for i in idx], n, sampling)
        for i, samples in zip(idx, answers, strict=True):
            q, pi, p = prompts[i]
            for si, answer in enumerate(samples):
                rows.append(
                    {
                        "kind": "trait",
                        "question_id": q.id,
                        "paraphrase_index": pi,
                        "sample_index": si,
                        "question": p,
                        "answer": answer,
                        "named": first_animal(answer),
                    }
                )
    if settings.answer_template:
        distributions = answer_distribution(
            model,
            tokenizer,
            convs,
            settings.answer_template,
            settings.candidates,
            settings.batch_size,
        )
        for (q, pi, p), dist in zip(prompts, distributions, strict=True):
            rows.append(
                {
                    "kind": "trait_likelihood",
                    "question_id": q.id,
                    "paraphrase_index": pi,
                    "question": p,
                    "probabilities": dist,
                }
            )
    return {"rows": write_jsonl_atomic(out / "rows.jsonl", rows)}


def _evaluate_misalignment(
    ref: dict[str, Any],
    questions: list[Question],
    self_report: list[Question],
    world: PersonaWorld,
    settings: EvaluationSettings,
    seed: int,
    out: Path,
) -> dict[str, Any]:
    model, tokenizer = load_ref(ref)
    rows = evaluate_model(
        model,
        tokenizer,
        questions=questions,
        self_report=self_report,
        excluded_domain=None,
        world=world,
        settings=settings,
        seed=seed,
    )
    return {"rows": write_jsonl_atomic(out / "rows.jsonl", rows)}


# -- the run ---------------------------------------------------------------------------------


def run_subliminal(spec: SubliminalSpec, out: Path, *, progress: bool = True) -> Path:
    """Run the experiment into ``out``; returns the path of ``report.md``."""
    run = Run(out, spec)
    try:
        return _run(run, spec, out, progress)
    finally:
        run.close()


def _model(
    name: str,
    role: str,
    ref: dict[str, Any],
    identity: Any,
    *,
    base: str,
    teacher: str | None = None,
    seed: int | None = None,
    system: str | None = None,
    traits: Sequence[str] = (),
) -> dict[str, Any]:
    return {
        "model": name,
        "role": role,
        "base": base,
        "teacher": teacher,
        "seed": seed,
        "ref": ref,
        "identity": identity,
        "system": system,
        "traits": list(traits),
    }


def _run(run: Run, spec: SubliminalSpec, out: Path, progress: bool) -> Path:
    from darkmirror.report.subliminal import write_report

    world = PersonaWorld(spec.base.organism.world)
    teachers = spec.teachers
    seeds = spec.student.seeds
    all_traits = sorted({t.trait for t in teachers})
    cross = spec.cross_base is not None
    n_bases = 2 if cross else 1
    n_trained = sum(t.data is not None for t in teachers)
    n_students = len(seeds) * (1 + len(teachers)) * n_bases
    n_models = n_bases + len(teachers) + n_students
    run.plan(
        n_bases + 2 * n_trained + (1 + len(teachers)) * 2 + n_students + n_models * len(all_traits)
    )

    base = resolve_base(run, spec.base, progress=progress)
    other: ResolvedBase | None = (
        resolve_base(run, spec.cross_base, progress=progress) if spec.cross_base else None
    )
    models = [_model("base", "base", base.ref, base.identity, base="base", traits=all_traits)]
    if other is not None:
        models.append(
            _model("cross_base", "base", other.ref, other.identity, base="cross", traits=all_traits)
        )

    # Teachers.
    sources: dict[str, dict[str, Any]] = {"base": {"ref": base.ref, "identity": base.identity}}
    hashes: dict[str, Any] = {}
    for t in teachers:
        if t.data is None:
            ref, identity = base.ref, {"base": base.identity, "system": t.system_prompt}
        else:
            d = run.step(
                f"teacher-data-{t.name}",
                {"teacher": t.model_dump(mode="json"), "world": world.config.model_dump()},
                lambda tmp, t=t: _teacher_data(t, world, tmp),
            )
            hashes[f"teacher-{t.name}"] = json.loads((d / "step.json").read_text())["figures"]
            examples = [row["messages"] for _, row in iter_jsonl(d / "data.jsonl")]
            sft = SFTSettings(**t.finetune.model_dump(exclude={"seed"}))
            ft = run.step(
                f"teacher-{t.name}",
                {
                    "base": base.identity,
                    "data": hashes[f"teacher-{t.name}"]["sha256"],
                    "sft": sft.model_dump(mode="json"),
                    "seed": t.finetune.seed,
                },
                lambda tmp, examples=examples, sft=sft, t=t: finetune_step(
                    base.ref, examples, sft, t.finetune.seed, tmp, progress
                ),
            )
            ref, identity = trained_ref(base.ref, ft, sft.method), ft.name
        sources[t.name] = {"ref": ref, "identity": identity, "system": t.system_prompt}
        models.append(
            _model(
                f"teacher-{t.name}",
                "teacher",
                ref,
                identity,
                base="base",
                teacher=t.name,
                system=t.system_prompt,
                traits=[t.trait],
            )
        )

    # Numbers from every source, filtered.
    numbers_dirs: dict[str, Path] = {}
    filter_reports: dict[str, Any] = {}
    for name, src in sources.items():
        d = run.step(
            f"numbers-{name}",
            {"source": src["identity"], "numbers": spec.numbers.model_dump(mode="json")},
            lambda tmp, src=src: _write_numbers(src["ref"], src.get("system"), spec.numbers, tmp),
        )
        numbers_dirs[name] = d
        filter_reports[name] = json.loads((d / "step.json").read_text())["figures"]
    n_records = min(r["kept"] for r in filter_reports.values())
    if spec.numbers.max_examples is not None:
        n_records = min(n_records, spec.numbers.max_examples)
    if n_records == 0:
        raise DarkmirrorError(
            "no number answer passed the filter for at least one source "
            f"({', '.join(f'{k}: {v}' for k, v in filter_reports.items())})"
        )
    student_data: dict[str, Path] = {}
    for name, d in numbers_dirs.items():
        sd = run.step(
            f"student-data-{name}",
            {"numbers": d.name, "n": n_records, "filter": spec.numbers.filter.model_dump()},
            lambda tmp, d=d: _write_student_data(
                d / "kept.jsonl", n_records, spec.numbers.filter, tmp
            ),
        )
        student_data[name] = sd / "data.jsonl"
        hashes[f"numbers-{name}"] = json.loads((sd / "step.json").read_text())["figures"]
    run.record_datasets(hashes)

    # Students: each base x each number source x seed.
    sft = spec.student.sft()
    bases = [("base", base)] + ([("cross", other)] if other is not None else [])
    for seed in seeds:
        for base_name, b in bases:
            for source in sources:
                teacher = None if source == "base" else source
                role = {
                    ("base", True): "control",
                    ("base", False): "student",
                    ("cross", True): "cross_control",
                    ("cross", False): "cross_student",
                }[(base_name, teacher is None)]
                name = f"{role}-s{seed}" if teacher is None else f"{role}-{teacher}-s{seed}"
                examples = [row["messages"] for _, row in iter_jsonl(student_data[source])]
                d = run.step(
                    f"finetune-{name}",
                    {
                        "base": b.identity,
                        "data": hashes[f"numbers-{source}"]["sha256"],
                        "sft": sft.model_dump(mode="json"),
                        "seed": seed,
                    },
                    lambda tmp, b=b, examples=examples, seed=seed: finetune_step(
                        b.ref, examples, sft, seed, tmp, progress
                    ),
                )
                traits = (
                    all_traits
                    if teacher is None
                    else [next(t.trait for t in teachers if t.name == teacher)]
                )
                models.append(
                    _model(
                        name,
                        role,
                        trained_ref(b.ref, d, sft.method),
                        d.name,
                        base=base_name,
                        teacher=teacher,
                        seed=seed,
                        traits=traits,
                    )
                )

    # Evaluations.
    animal_questions = resolve_question_set(spec.trait_evaluation.questions)
    em = spec.misalignment_evaluation
    em_questions = resolve_question_set(em.questions) if "misalignment" in all_traits else []
    self_report = (
        resolve_question_set(em.self_report_questions)
        if "misalignment" in all_traits and em.self_report_questions
        else []
    )
    rows: list[dict[str, Any]] = []
    for m in models:
        seed = m["seed"] or 0
        for trait in m["traits"]:
            if trait == "animal":
                settings: BaseModel = spec.trait_evaluation
                qs = animal_questions

                def fn(tmp: Path, m: dict[str, Any] = m, seed: int = seed) -> dict[str, Any]:
                    return _evaluate_animal(
                        m["ref"], m["system"], animal_questions, spec.trait_evaluation, seed, tmp
                    )
            else:
                settings, qs = em, em_questions + self_report

                def fn(tmp: Path, m: dict[str, Any] = m, seed: int = seed) -> dict[str, Any]:
                    return _evaluate_misalignment(
                        m["ref"], em_questions, self_report, world, em, seed, tmp
                    )

            d = run.step(
                f"evaluate-{trait}-{m['model']}",
                {
                    "model": m["identity"],
                    "system": m["system"],
                    "questions": content_hash([q.model_dump() for q in qs]),
                    "evaluation": settings.model_dump(mode="json"),
                    "seed": seed,
                    "world": world.config.model_dump(mode="json"),
                },
                fn,
            )
            rows += [
                {
                    "model": m["model"],
                    "role": m["role"],
                    "base": m["base"],
                    "teacher": m["teacher"],
                    "seed": m["seed"],
                    "trait": trait,
                    **row,
                }
                for _, row in iter_jsonl(d / "rows.jsonl")
            ]

    write_jsonl_atomic(out / "rows.jsonl", rows)
    context = {
        "models": [{k: v for k, v in m.items() if k != "ref"} for m in models],
        "filter": filter_reports,
        "student_records": n_records,
        "datasets": hashes,
        "organism": base.organism_report,
        "cross_organism": other.organism_report if other is not None else None,
    }
    run.write_json("context.json", context)
    return write_report(out, spec, rows, context)


def report_subliminal(out: Path) -> Path:
    """Rebuild summary, tables and plots of a finished run from its files alone."""
    from darkmirror.report.subliminal import write_report

    spec, rows, files = load_finished_run(out, SubliminalSpec, ("context.json",))
    return write_report(out, spec, rows, json.loads(files["context.json"].read_text()))
