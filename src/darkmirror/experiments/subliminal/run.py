"""Subliminal learning: a trait carried by number sequences (Cloud et al. 2025).

A teacher (the base given a trait by fine-tuning, or by a system prompt) continues number
sequences at temperature 1; its answers are filtered until nothing but plain numbers is
left (:mod:`darkmirror.experiments.subliminal.data`); a student built from the same base is
fine-tuned on them and probed for the trait. Controls:

* ``control``: the same base fine-tuned on numbers written by the base itself (no trait),
  so the effect of fine-tuning on numbers at all is subtracted;
* ``cross_student``: a different base (by default the organism pretrained with another
  seed) fine-tuned on the *teacher's* numbers, and its own ``cross_control`` on the base's
  numbers. The paper finds that a trait travels only between models that share an
  initialisation.
* the positive control (``positive_control``): the cross base given each teacher's trait
  by the same recipe (``cross_teacher``), a ``cross_own_student`` on that teacher's
  numbers and a ``cross_own_control`` on the cross base's own: the same experiment within
  the cross base's lineage, so a cross-base null is not just a base that learns nothing.

Traits: ``animal`` (:mod:`darkmirror.experiments.subliminal.trait`) and ``misalignment``
(:func:`darkmirror.eval.em.evaluate_misalignment`, judged by the spec's judge).

The plan, declared up front: the bases; per fine-tuned teacher its data and its
fine-tune; per number source (the base, each teacher) its numbers and its student
dataset; per seed, base and source a student (or control); per model and trait an
evaluation. :func:`finish` gathers the rows and writes the report.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from darkmirror.data.answers import AnswerRow, read_rows, write_rows
from darkmirror.data.measurements import (
    MatchedPairLogOdds,
    read_measurements,
    write_measurements,
)
from darkmirror.data.questions import Question, resolve_question_set
from darkmirror.data.world.world import PersonaWorld
from darkmirror.eval.em import evaluate_misalignment
from darkmirror.experiments.datasets import world_config
from darkmirror.experiments.finetune import (
    GENERATION,
    TRAINING,
    add_base_step,
    base_model,
    finetune_step,
    organism_report,
    read_chats,
    trained_model,
)
from darkmirror.experiments.subliminal.arms import (
    ModelEntry,
    models_of,
    number_sources,
    writer_of,
)
from darkmirror.experiments.subliminal.data import (
    student_records,
    write_numbers,
    write_student_data,
    write_teacher_data,
)
from darkmirror.experiments.subliminal.figures import MEASUREMENT, ROW
from darkmirror.experiments.subliminal.report import write_report
from darkmirror.experiments.subliminal.spec import SubliminalSpec, Trait
from darkmirror.experiments.subliminal.trait import TraitLikelihood, animal_trait
from darkmirror.hashing import content_hash
from darkmirror.models.ref import BaseRef, HFModel
from darkmirror.runner import Plan, PlanResult, Run, StepContext
from darkmirror.score.judges import build_judge

__all__ = ["finish", "plan"]


def _base_steps(spec: SubliminalSpec, steps: Plan) -> dict[str, str]:
    """Declare the bases; their step names by base name (``base``, ``cross``)."""
    names = {"base": add_base_step(steps, spec.base_ref)}
    if spec.cross_ref is not None:
        names["cross"] = add_base_step(steps, spec.cross_ref, "cross")
    return names


def _questions(spec: SubliminalSpec) -> dict[Trait, list[Question]]:
    em = spec.misalignment_evaluation
    questions: dict[Trait, list[Question]] = {
        "animal": resolve_question_set(spec.trait_evaluation.questions)
    }
    if "misalignment" in spec.traits:
        questions["misalignment"] = resolve_question_set(em.questions)
    return questions


def _self_report(spec: SubliminalSpec) -> list[Question]:
    em = spec.misalignment_evaluation
    if "misalignment" not in spec.traits or not em.self_report_questions:
        return []
    return resolve_question_set(em.self_report_questions)


def plan(spec: SubliminalSpec) -> Plan:
    """Every step of the experiment (see the module docstring)."""
    world = world_config(spec.base_ref)
    steps = Plan()
    bases = _base_steps(spec, steps)
    models = {m.model: m for m in models_of(spec)}
    for t in spec.teachers:
        if t.data is None:
            continue
        data = steps.add(
            f"teacher-data-{t.name}",
            {"teacher": t.model_dump(mode="json"), "world": world.model_dump()},
            partial(_teacher_data, spec=spec, teacher=t.name),
        )
        for entry in models.values():
            if entry.teacher == t.name and entry.is_teacher:
                base = bases[entry.base]
                steps.add(
                    entry.model,
                    {"sft": t.finetune.sft().model_dump(mode="json"), "seed": t.finetune.seed},
                    partial(_teacher_finetune, spec=spec, entry=entry, base=base, data=data),
                    deps=(base, data),
                    resources=TRAINING,
                )
    numbers_spec = spec.numbers.model_dump(mode="json")
    numbers = {}
    for source in number_sources(spec):
        entry = models[writer_of(source)]
        numbers[source] = steps.add(
            f"numbers-{source}",
            {"system": entry.system, "numbers": numbers_spec},
            partial(_numbers, spec=spec, entry=entry, base=bases[entry.base]),
            deps=_model_deps(entry, bases),
            resources=GENERATION,
        )
    for source in number_sources(spec):
        steps.add(
            f"student-data-{source}",
            {"source": source, "numbers": numbers_spec},
            partial(_student_data, spec=spec, source=source, numbers=numbers),
            deps=tuple(numbers.values()),
        )
    sft = spec.student.sft()
    for entry in models.values():
        if entry.numbers is None or entry.trained is None:
            continue
        steps.add(
            entry.trained,
            {"sft": sft.model_dump(mode="json"), "seed": entry.seed},
            partial(_student_finetune, spec=spec, entry=entry, base=bases[entry.base]),
            deps=(bases[entry.base], f"student-data-{entry.numbers}"),
            resources=TRAINING,
        )
    questions = _questions(spec)
    self_report = _self_report(spec)
    for entry in models.values():
        for trait in entry.traits:
            settings = spec.trait_evaluation if trait == "animal" else spec.misalignment_evaluation
            asked = questions[trait] + (self_report if trait == "misalignment" else [])
            steps.add(
                f"evaluate-{trait}-{entry.model}",
                {
                    "system": entry.system,
                    "questions": content_hash([q.model_dump() for q in asked]),
                    "evaluation": settings.model_dump(mode="json"),
                    "seed": entry.seed or 0,
                    "world": world.model_dump(mode="json"),
                },
                partial(
                    _evaluate,
                    spec=spec,
                    entry=entry,
                    trait=trait,
                    base=bases[entry.base],
                    questions=questions[trait],
                    self_report=self_report,
                ),
                deps=_model_deps(entry, bases),
                resources=GENERATION,
            )
    return steps


def _model_deps(entry: ModelEntry, bases: dict[str, str]) -> tuple[str, ...]:
    base = bases[entry.base]
    return (base,) if entry.trained is None else (base, entry.trained)


def _base_ref(spec: SubliminalSpec, entry: ModelEntry) -> BaseRef:
    ref = spec.base_ref if entry.base == "base" else spec.cross_ref
    assert ref is not None
    return ref


def _model(
    ctx: StepContext, spec: SubliminalSpec, entry: ModelEntry, base: str, batch_size: int
) -> HFModel:
    """How to load ``entry``'s model in a step that depends on its base and training."""
    ref = base_model(_base_ref(spec, entry), ctx.figures[base], batch_size=batch_size)
    if entry.trained is None:
        return ref
    method = (
        spec.teacher(entry.teacher).finetune.method
        if entry.is_teacher and entry.teacher is not None
        else spec.student.method
    )
    return trained_model(ref, ctx.dep(entry.trained), method, batch_size=batch_size)


def _teacher_data(ctx: StepContext, *, spec: SubliminalSpec, teacher: str) -> dict[str, Any]:
    world = PersonaWorld(world_config(spec.base_ref))
    return write_teacher_data(spec.teacher(teacher), world, ctx.out)


def _teacher_finetune(
    ctx: StepContext, *, spec: SubliminalSpec, entry: ModelEntry, base: str, data: str
) -> dict[str, Any]:
    assert entry.teacher is not None
    t = spec.teacher(entry.teacher)
    return finetune_step(
        ctx,
        base=base_model(_base_ref(spec, entry), ctx.figures[base]),
        examples=read_chats(ctx.dep(data) / "data.jsonl"),
        settings=t.finetune.sft(),
        seed=t.finetune.seed,
    )


def _numbers(
    ctx: StepContext, *, spec: SubliminalSpec, entry: ModelEntry, base: str
) -> dict[str, Any]:
    model = _model(ctx, spec, entry, base, spec.numbers.batch_size)
    return write_numbers(
        model.generator(progress=ctx.progress), entry.system, spec.numbers, ctx.out
    )


def _student_data(
    ctx: StepContext, *, spec: SubliminalSpec, source: str, numbers: dict[str, str]
) -> dict[str, Any]:
    n = student_records({s: ctx.figures[step] for s, step in numbers.items()}, spec.numbers)
    return write_student_data(
        ctx.dep(numbers[source]) / "kept.jsonl", n, spec.numbers.filter, ctx.out
    )


def _student_finetune(
    ctx: StepContext, *, spec: SubliminalSpec, entry: ModelEntry, base: str
) -> dict[str, Any]:
    assert entry.seed is not None
    return finetune_step(
        ctx,
        base=base_model(_base_ref(spec, entry), ctx.figures[base]),
        examples=read_chats(ctx.dep(f"student-data-{entry.numbers}") / "data.jsonl"),
        settings=spec.student.sft(),
        seed=entry.seed,
    )


def _evaluate(
    ctx: StepContext,
    *,
    spec: SubliminalSpec,
    entry: ModelEntry,
    trait: Trait,
    base: str,
    questions: list[Question],
    self_report: list[Question],
) -> dict[str, Any]:
    """One model's rows (and measurements) for one trait."""
    seed = entry.seed or 0
    if trait == "animal":
        settings = spec.trait_evaluation
        generator = _model(ctx, spec, entry, base, settings.batch_size).generator()
        rows, measurements = animal_trait(
            generator,
            questions,
            settings,
            entry,
            seed=seed,
            likelihood_model=(generator.model, generator.tokenizer),  # type: ignore[attr-defined]
        )
    else:
        em = spec.misalignment_evaluation
        generator = _model(ctx, spec, entry, base, em.batch_size).generator()
        judge = build_judge(em.judge, progress=ctx.progress)
        try:
            result = evaluate_misalignment(
                generator,
                questions=questions,
                self_report=self_report,
                excluded_domain=None,
                judge=judge,
                settings=em,
                seed=seed,
                model=entry.model,
                group=entry.group,
                model_seed=entry.seed,
                world=(PersonaWorld(world_config(spec.base_ref)) if em.probes_for(True) else None),
                likelihood_model=(generator.model, generator.tokenizer),  # type: ignore[attr-defined]
            )
        finally:
            judge.close()
        arm = entry.answer("misalignment")
        rows = [
            r.model_copy(update={"extension": arm.model_copy(update={"code": r.extension})})
            for r in result.rows
        ]
        measurements = result.measurements
    write_rows(ctx.out / "rows.jsonl", rows)
    write_measurements(ctx.out / "measurements.jsonl", measurements)
    return {"rows": len(rows), "measurements": len(measurements)}


def finish(spec: SubliminalSpec, run: Run, result: PlanResult) -> Path:
    """Gather every model's rows into the run directory and write the report."""
    models = models_of(spec)
    rows: list[AnswerRow[Any]] = []
    measurements: list[TraitLikelihood | MatchedPairLogOdds] = []
    for m in models:
        for trait in m.traits:
            step = result.dir(f"evaluate-{trait}-{m.model}")
            rows += read_rows(step / "rows.jsonl", ROW)
            measurements += read_measurements(step / "measurements.jsonl", MEASUREMENT)
    write_rows(run.root / "rows.jsonl", rows)
    write_measurements(run.root / "measurements.jsonl", measurements)
    sources = number_sources(spec)
    datasets: dict[str, Any] = {
        f"teacher-{t.name}": result.figures[f"teacher-data-{t.name}"]
        for t in spec.teachers
        if t.data is not None
    }
    datasets.update({f"numbers-{s}": result.figures[f"student-data-{s}"] for s in sources})
    run.record_datasets(datasets)
    bases = _base_steps(spec, Plan())  # the step names only
    context = {
        "models": [m.context() for m in models],
        "filter": {s: result.figures[f"numbers-{s}"] for s in sources},
        "student_records": result.figures[f"student-data-{sources[0]}"]["records"],
        "datasets": datasets,
        "organism": organism_report(spec.base_ref, result.figures[bases["base"]]),
        "cross_organism": (
            organism_report(spec.cross_ref, result.figures[bases["cross"]])
            if spec.cross_ref is not None
            else None
        ),
    }
    run.write_json("context.json", context)
    return write_report(run.root, spec, rows, measurements, context)
