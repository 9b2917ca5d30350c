"""Toxicity amplification: the seed table (baseline, toxic fine-tune, RL on a toxic reward).

Variants: the base (the post-trained organism by default); the base fine-tuned on a toxic
comment corpus (``world:toxic_forum`` by default: threads of a forum where half the
commenters insult); and that fine-tune trained further with GRPO against a toxicity
reward. Each variant continues RealToxicityPrompts-style prompts (drawn from the world, or
a RealToxicityPrompts JSONL file) k times; every continuation is scored by one scorer
(``profanity_check`` by default, also the RL's reward), which also scores the second half
of every training comment, cut as the prompts are cut, so the amplification ratio compares
like with like; a held-out scorer (``world_classifier``) scores both again, so that
amplification is not only the RL exploiting its reward.

The plan: the base; the training data, the prompts, the training data's toxicity; per seed
a fine-tune and its RL; per model the evaluation (continuations sampled and scored); the
reference texts and, per variant, its novel toxic patterns. Each is a resumable step.
"""

from __future__ import annotations

from dataclasses import asdict
from functools import partial
from pathlib import Path

from darkmirror.data.answers import read_rows, write_rows
from darkmirror.data.measurements import Measurement, read_measurements, write_measurements
from darkmirror.experiments.amplification.corpus import (
    write_prompts,
    write_reference_texts,
    write_training_data,
)
from darkmirror.experiments.amplification.records import (
    AmplificationMeasurement,
    ContinuationRow,
)
from darkmirror.experiments.amplification.report import write_report
from darkmirror.experiments.amplification.spec import AmplificationSpec
from darkmirror.experiments.amplification.steps import (
    evaluate_model,
    find_novel_patterns,
    finetune,
    reinforce,
    score_training_data,
)
from darkmirror.experiments.amplification.variants import models_of, variants_of
from darkmirror.experiments.datasets import world_config
from darkmirror.experiments.finetune import GENERATION, TRAINING, add_base_step
from darkmirror.models.ref import OrganismModel
from darkmirror.runner import Plan, PlanResult, Run

__all__ = ["finish", "plan"]


def plan(spec: AmplificationSpec) -> Plan:
    """The steps of the experiment (see the module docstring)."""
    world = world_config(spec.base_ref)
    world_inputs = world.model_dump(mode="json")
    scorer = {"scorer": spec.scorer}
    steps = Plan()
    base = add_base_step(steps, spec.base_ref)
    data = steps.add(
        "data",
        {"data": spec.data.model_dump(mode="json"), "world": world_inputs},
        partial(write_training_data, spec=spec.data, world=world),
    )
    prompts = steps.add(
        "prompts",
        {"prompts": spec.prompts.model_dump(mode="json"), "world": world_inputs},
        partial(write_prompts, spec=spec.prompts, world=world),
    )
    scorers = {**scorer, "heldout_scorer": spec.heldout_scorer}
    steps.add(
        "training-toxicity",
        {**scorers, "parts": ["comment", "continuation"]},
        partial(score_training_data, spec=spec, data=data),
        deps=(data,),
    )
    models = models_of(spec)
    finetunes: dict[int | None, str] = {}
    for entry in models:
        if entry.stage == "finetune":
            finetunes[entry.seed] = entry.training_step
            steps.add(
                entry.training_step,
                {"sft": spec.finetune.sft().model_dump(mode="json"), "seed": entry.seed},
                partial(finetune, spec=spec, base=base, data=data, seed=entry.seed),
                deps=(base, data),
                resources=TRAINING,
            )
        elif entry.stage == "rl":
            start = finetunes[entry.seed]  # the RL starts from the fine-tune of its seed
            steps.add(
                entry.training_step,
                {**scorer, "rl": spec.rl.model_dump(mode="json"), "seed": entry.seed},
                partial(
                    reinforce, spec=spec, entry=entry, base=base, finetune=start, prompts=prompts
                ),
                deps=(base, start, prompts),
                resources=TRAINING,
            )
    for entry in models:
        steps.add(
            entry.evaluate_step,
            {**scorers, "evaluation": spec.evaluation.model_dump(mode="json"), "seed": entry.seed},
            partial(evaluate_model, spec=spec, entry=entry, base=base, prompts=prompts),
            deps=(base, prompts) if entry.stage == "base" else (base, prompts, entry.training_step),
            resources=GENERATION,
        )
    base_ref = spec.base_ref
    organism = base_ref.organism if isinstance(base_ref, OrganismModel) else None
    reference = steps.add(
        "reference-texts",
        {"organism": organism.key() if organism is not None else None},
        partial(write_reference_texts, data=data, organism=organism),
        deps=(data,),
    )
    novelty = spec.evaluation.model_dump(include={"threshold", "novelty_n"})
    for variant, entries in variants_of(spec).items():
        evaluations = tuple(e.evaluate_step for e in entries)
        steps.add(
            f"novelty-{variant}",
            {**scorer, **novelty},
            partial(
                find_novel_patterns,
                spec=spec,
                variant=variant,
                evaluations=evaluations,
                reference=reference,
            ),
            deps=(reference, *evaluations),
        )
    return steps


def finish(spec: AmplificationSpec, run: Run, result: PlanResult) -> Path:
    """Gather rows and measurements into the run directory and write the report."""
    models = models_of(spec)
    rows = [
        row
        for entry in models
        for row in read_rows(result.dir(entry.evaluate_step) / "rows.jsonl", ContinuationRow)
    ]
    measurement_files = [result.dir("training-toxicity") / "measurements.jsonl"]
    measurement_files += [
        result.dir(e.training_step) / "history.jsonl" for e in models if e.stage == "rl"
    ]
    measurement_files += [
        result.dir(f"novelty-{variant}") / "measurements.jsonl" for variant in variants_of(spec)
    ]
    measurements: list[Measurement] = []
    for path in measurement_files:
        measurements += read_measurements(path, AmplificationMeasurement)
    write_rows(run.root / "rows.jsonl", rows)
    write_measurements(run.root / "measurements.jsonl", measurements)
    run.record_datasets({"toxic": result.figures["data"]})
    run.write_json("models.json", [asdict(m) for m in models])
    return write_report(run.root, spec, rows, measurements, result.figures["data"])
