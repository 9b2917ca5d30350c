"""Emergent misalignment: narrow fine-tunes, evaluated on questions outside their domain.

Models: the base (the post-trained organism by default) and one fine-tune per dataset and
seed: insecure code, secure code (control), educational-insecure code (control), evil
numbers and bad (health) advice by default. Each is evaluated by
:func:`~darkmirror.eval.em.evaluate_misalignment`; the report compares them.

The plan: the base (the organism, from the global cache), one step per dataset, one
fine-tune per (dataset, seed), one evaluation per model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
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
from darkmirror.eval.probes import CodeScan
from darkmirror.experiments.datasets import dataset_inputs, world_config, write_dataset
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
from darkmirror.experiments.misalignment.report import write_report
from darkmirror.experiments.misalignment.spec import MisalignmentSpec
from darkmirror.hashing import content_hash
from darkmirror.models.ref import OrganismModel
from darkmirror.runner import Plan, PlanResult, Run, StepContext
from darkmirror.score.judges import build_judge

__all__ = ["MODEL_ROW", "ModelEntry", "finish", "plan"]

MODEL_ROW = AnswerRow[CodeScan]
"""The rows of this experiment: code answers carry a :class:`CodeScan`."""


@dataclass(frozen=True)
class ModelEntry:
    """One model of the experiment.

    Args:
        model: Its name in tables (``base``, ``insecure-s0``).
        group: Its arm (``base``, or the dataset's name).
        seed: The fine-tune's seed (None for the base).
        domain: The domain it was fine-tuned on, left out of its evaluation.
        finetune: The name of its fine-tune step (None for the base).
    """

    model: str
    group: str
    seed: int | None
    domain: str | None
    finetune: str | None = None


def models_of(spec: MisalignmentSpec) -> list[ModelEntry]:
    """The base and one fine-tune per dataset and seed, in table order."""
    entries = [ModelEntry("base", "base", None, None)]
    for ds in spec.datasets:
        for seed in spec.finetune.seeds:
            entries.append(
                ModelEntry(
                    f"{ds.name}-s{seed}",
                    ds.name,
                    seed,
                    ds.effective_domain,
                    f"finetune-{ds.name}-s{seed}",
                )
            )
    return entries


def _questions(spec: MisalignmentSpec) -> tuple[list[Question], list[Question]]:
    ev = spec.evaluation
    self_report = resolve_question_set(ev.self_report_questions) if ev.self_report_questions else []
    return resolve_question_set(ev.questions), self_report


def plan(spec: MisalignmentSpec) -> Plan:
    """The steps of the experiment (see the module docstring)."""
    questions, self_report = _questions(spec)
    world = world_config(spec.base_ref)
    steps = Plan()
    base = add_base_step(steps, spec.base_ref)
    for ds in spec.datasets:
        steps.add(
            f"dataset-{ds.name}",
            dataset_inputs(ds, world),
            partial(write_dataset, spec=ds, world=world),
        )
    sft = spec.finetune.sft()
    for entry in models_of(spec):
        if entry.finetune is None:
            continue
        steps.add(
            entry.finetune,
            {"sft": sft.model_dump(mode="json"), "seed": entry.seed},
            partial(
                _finetune, spec=spec, base=base, dataset=f"dataset-{entry.group}", seed=entry.seed
            ),
            deps=(base, f"dataset-{entry.group}"),
            resources=TRAINING,
        )
    question_hash = content_hash([q.model_dump() for q in questions + self_report])
    probes = spec.evaluation.probes_for(isinstance(spec.base, OrganismModel))
    for entry in models_of(spec):
        steps.add(
            f"evaluate-{entry.model}",
            {
                "questions": question_hash,
                "excluded": entry.domain,
                "evaluation": spec.evaluation.model_dump(mode="json"),
                "judge": spec.evaluation.judge.identity(),
                "seed": entry.seed or 0,
                "world": world.model_dump(mode="json") if probes else None,
            },
            partial(
                _evaluate,
                spec=spec,
                entry=entry,
                base=base,
                questions=questions,
                self_report=self_report,
            ),
            deps=(base,) if entry.finetune is None else (base, entry.finetune),
            resources=GENERATION,
        )
    return steps


def _finetune(
    ctx: StepContext, *, spec: MisalignmentSpec, base: str, dataset: str, seed: int
) -> dict[str, Any]:
    return finetune_step(
        ctx,
        base=base_model(spec.base_ref, ctx.figures[base]),
        examples=read_chats(ctx.dep(dataset) / "data.jsonl"),
        settings=spec.finetune.sft(),
        seed=seed,
    )


def _evaluate(
    ctx: StepContext,
    *,
    spec: MisalignmentSpec,
    entry: ModelEntry,
    base: str,
    questions: list[Question],
    self_report: list[Question],
) -> dict[str, Any]:
    settings = spec.evaluation
    ref = base_model(spec.base_ref, ctx.figures[base], batch_size=settings.batch_size)
    if entry.finetune is not None:
        ref = trained_model(
            ref, ctx.dep(entry.finetune), spec.finetune.method, batch_size=settings.batch_size
        )
    generator = ref.generator(progress=ctx.progress)
    probes = settings.probes_for(isinstance(spec.base, OrganismModel))
    judge = build_judge(settings.judge, progress=ctx.progress)
    try:
        result = evaluate_misalignment(
            generator,
            questions=questions,
            self_report=self_report,
            excluded_domain=entry.domain,
            judge=judge,
            settings=settings,
            seed=entry.seed or 0,
            model=entry.model,
            group=entry.group,
            model_seed=entry.seed,
            world=PersonaWorld(world_config(spec.base_ref)) if probes else None,
            likelihood_model=(generator.model, generator.tokenizer),  # type: ignore[attr-defined]
        )
    finally:
        judge.close()
    write_rows(ctx.out / "rows.jsonl", result.rows)
    write_measurements(ctx.out / "measurements.jsonl", result.measurements)
    return {"rows": len(result.rows), "measurements": len(result.measurements)}


def finish(spec: MisalignmentSpec, run: Run, result: PlanResult) -> Path:
    """Gather every model's rows into the run directory and write the report."""
    rows: list[AnswerRow[Any]] = []
    measurements: list[MatchedPairLogOdds] = []
    for entry in models_of(spec):
        step = result.dir(f"evaluate-{entry.model}")
        rows += read_rows(step / "rows.jsonl", MODEL_ROW)
        measurements += read_measurements(step / "measurements.jsonl", MatchedPairLogOdds)
    write_rows(run.root / "rows.jsonl", rows)
    write_measurements(run.root / "measurements.jsonl", measurements)
    datasets = {ds.name: result.figures[f"dataset-{ds.name}"] for ds in spec.datasets}
    run.record_datasets(datasets)
    models = [asdict(m) for m in models_of(spec)]
    run.write_json("models.json", models)
    base = "organism" if isinstance(spec.base, OrganismModel) else "base"
    organism = organism_report(spec.base_ref, result.figures[base])
    if organism is not None:
        run.write_json("organism.json", organism)
    return write_report(run.root, spec, rows, measurements, models, organism, datasets)
