"""The persona direction: find it, check it against the truth, monitor, steer, ablate, re-align.

The emergent-misalignment literature explains the effect by a "misaligned persona": a
direction in the activations that narrow fine-tuning strengthens, that predicts misaligned
answers, that adds misalignment when steered in and removes most of it when ablated; and a
few hundred good examples re-align the model. This experiment measures each of these on
one base model (the organism by default), a misaligned fine-tune of it (insecure code) and
a control (secure code), each fine-tuned once per seed:

* **directions** (per seed, per layer; :mod:`.directions`): the mean activation over
  answer tokens on the misaligned model's misaligned answers minus that on its aligned
  answers (labels from the judge, on the training half of the questions); the mean
  activation of the fine-tune minus the base on the same answers (and of the control
  minus the base);
* **ground truth** (:mod:`.probe`): a logistic probe of the persona labels of pretraining
  documents, its accuracy on documents it never saw, and the cosine of every direction
  with it;
* **monitoring**: the AUROC of the projection as a detector of misaligned answers on the
  held-out questions; the mean projection of each model's activations on neutral prompts
  (:mod:`.neutral`);
* **steering**: the base model generating with ``a`` times the direction added at one
  layer, against random directions of the same norm (:mod:`.interventions`);
* **ablation**: the misaligned model (and the control) generating with the direction
  projected out at every layer, against random directions;
* **re-alignment**: the misaligned model fine-tuned on N benign examples of another domain
  (:mod:`.realign`).

Every evaluation goes through the evaluation core with the hooks of
:mod:`darkmirror.persona.hooks` held around it (:mod:`.evaluation`). The plan declares
every step up front without loading a model: the steering layer is fixed by the
``steering-layer`` step, right after the base, from the model itself.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

from darkmirror.data.answers import AnswerRow, read_rows, write_rows
from darkmirror.data.measurements import Measurement, read_measurements, write_measurements
from darkmirror.data.questions import Question, resolve_question_set
from darkmirror.data.world.world import PersonaWorld
from darkmirror.experiments.datasets import dataset_inputs, world_config, write_dataset
from darkmirror.experiments.finetune import (
    GENERATION,
    TRAINING,
    add_base_step,
    finetune_step,
    organism_report,
    read_chats,
)
from darkmirror.experiments.persona.directions import compare_step, directions_step
from darkmirror.experiments.persona.evaluation import evaluate_step
from darkmirror.experiments.persona.interventions import LAYER_STEP, steering_layer_step
from darkmirror.experiments.persona.models import (
    Evaluation,
    PersonaModel,
    evaluations,
    realigned,
    seed_models,
)
from darkmirror.experiments.persona.neutral import neutral_prompts, neutral_step, projection_step
from darkmirror.experiments.persona.probe import probe_inputs, probe_step
from darkmirror.experiments.persona.realign import realign_inputs, write_realign_data
from darkmirror.experiments.persona.records import PersonaMeasurement, PersonaRow
from darkmirror.experiments.persona.report import write_report
from darkmirror.experiments.persona.spec import PersonaSpec
from darkmirror.hashing import content_hash
from darkmirror.models.ref import OrganismModel
from darkmirror.persona.directions import chance_cosine
from darkmirror.runner import Plan, PlanResult, Run, StepContext
from darkmirror.train.sft import SFTSettings

__all__ = ["finish", "plan"]

PROBE_STEP = "probe"


def _base(spec: PersonaSpec) -> PersonaModel:
    """The base as ``finish`` finds it (``add_base_step`` names the organism's step
    "organism", another base's "base")."""
    step = "organism" if isinstance(spec.base, OrganismModel) else "base"
    return PersonaModel("base", "base", None, step)


def _finetune(
    ctx: StepContext,
    *,
    spec: PersonaSpec,
    model: PersonaModel,
    dataset: str,
    n: int | None,
    settings: SFTSettings,
    seed: int,
) -> dict[str, Any]:
    return finetune_step(
        ctx,
        base=model.ref(spec, ctx, batch_size=spec.evaluation.batch_size),
        examples=read_chats(ctx.dep(dataset) / "data.jsonl", n),
        settings=settings,
        seed=seed,
    )


class _Declare:
    """Adds the experiment's steps to a plan (one method per kind of step)."""

    def __init__(self, spec: PersonaSpec, questions: list[Question]) -> None:
        self.spec = spec
        self.questions = questions
        self.steps = Plan()
        self.question_hash = content_hash([q.model_dump() for q in questions])

    def finetune(
        self, step: str, model: PersonaModel, dataset: str, seed: int, n: int | None = None
    ) -> None:
        settings = self.spec.finetune.sft() if n is None else self.spec.realign.sft()
        self.steps.add(
            step,
            {"sft": settings.model_dump(mode="json"), "seed": seed, "n": n},
            partial(
                _finetune,
                spec=self.spec,
                model=model,
                dataset=dataset,
                n=n,
                settings=settings,
                seed=seed,
            ),
            deps=(*model.deps, dataset),
            resources=TRAINING,
        )

    def evaluation(self, e: Evaluation) -> None:
        ev = self.spec.evaluation
        probes = ev.probes_for(isinstance(self.spec.base, OrganismModel))
        deps = e.model.deps
        if e.intervention is not None and e.directions is not None:
            deps = (*deps, e.directions, LAYER_STEP)
        self.steps.add(
            e.step,
            {
                "questions": self.question_hash,
                "evaluation": ev.model_dump(mode="json"),
                "judge": ev.judge.identity(),
                "world": world_config(self.spec.base_ref).model_dump(mode="json")
                if probes
                else None,
                "model": [e.model.name, e.model.group, e.model.seed],
                "intervention": asdict(e.intervention) if e.intervention else None,
                "n": e.n,
            },
            partial(evaluate_step, spec=self.spec, evaluation=e, questions=self.questions),
            deps=deps,
            resources=GENERATION,
        )

    def neutral(self, model: PersonaModel, prompts: list[dict[str, Any]]) -> str:
        return self.steps.add(
            f"neutral-{model.name}",
            {"prompts": content_hash(prompts), "batch": self.spec.monitor.batch_size},
            partial(neutral_step, spec=self.spec, model=model, prompts=prompts),
            deps=model.deps,
        )


def plan(spec: PersonaSpec) -> Plan:
    """Every step of the experiment, in the order they run (see the module docstring)."""
    questions = resolve_question_set(spec.evaluation.questions)
    world = world_config(spec.base_ref)
    declare = _Declare(spec, questions)
    steps = declare.steps
    base = PersonaModel("base", "base", None, add_base_step(steps, spec.base_ref))
    steps.add(
        LAYER_STEP,
        {"layer": spec.steering.layer},
        partial(steering_layer_step, spec=spec, base=base.base),
        deps=(base.base,),
    )
    for ds in (spec.misaligned, spec.control):
        steps.add(
            f"dataset-{ds.name}",
            dataset_inputs(ds, world),
            partial(write_dataset, spec=ds, world=world),
        )
    steps.add(
        "dataset-realign",
        realign_inputs(spec.realign, world),
        partial(write_realign_data, spec=spec.realign, world=world),
    )
    by_step = {e.step: e for e in evaluations(spec, base)}
    declare.evaluation(by_step["evaluate-base"])
    if spec.probe.enabled:
        steps.add(
            PROBE_STEP,
            probe_inputs(spec),
            partial(probe_step, spec=spec, base=base),
            deps=base.deps,
        )
    prompts = neutral_prompts(PersonaWorld(world), spec.monitor)
    neutral_base = declare.neutral(base, prompts)
    for seed in spec.finetune.seeds:
        models = seed_models(spec, base, seed)
        for model, ds in ((models.misaligned, spec.misaligned), (models.control, spec.control)):
            declare.finetune(model.finetunes[-1][0], base, f"dataset-{ds.name}", seed)
            declare.evaluation(by_step[f"evaluate-{model.name}"])
        directions = steps.add(
            f"directions-s{seed}",
            {
                "questions": declare.question_hash,
                "evaluation": spec.evaluation.model_dump(mode="json"),
                "judge": spec.evaluation.judge.identity(),
                "directions": spec.directions.model_dump(mode="json"),
                "random_draws": spec.steering.random_draws,
                "seed": seed,
            },
            partial(directions_step, spec=spec, models=models, base=base, questions=questions),
            deps=tuple(dict.fromkeys((*models.misaligned.deps, *models.control.deps))),
        )
        probe = PROBE_STEP if spec.probe.enabled else None
        steps.add(
            f"compare-directions-s{seed}",
            {"seed": seed},
            partial(compare_step, directions=directions, probe=probe, misaligned=models.misaligned),
            deps=(directions,) if probe is None else (directions, probe),
        )
        neutral = {
            "base": (base, neutral_base),
            "control": (models.control, declare.neutral(models.control, prompts)),
            "misaligned": (models.misaligned, declare.neutral(models.misaligned, prompts)),
        }
        steps.add(
            f"project-neutral-s{seed}",
            {"seed": seed, "prompts": content_hash(prompts)},
            partial(
                projection_step, neutral=neutral, directions=directions, seed=seed, prompts=prompts
            ),
            deps=(*(step for _, step in neutral.values()), directions),
        )
        for e in by_step.values():
            if e.directions == directions:
                declare.evaluation(e)
        for n in spec.realign.sizes:
            if n > 0:
                model = realigned(spec, models.misaligned, n)
                declare.finetune(model.name, models.misaligned, "dataset-realign", seed, n)
                declare.evaluation(by_step[f"evaluate-{model.name}"])
    return steps


def _copy_directions(spec: PersonaSpec, result: PlanResult, out: Path) -> None:
    """The directions of this run under ``out/directions/`` (safetensors + JSON sidecar):
    ``<kind>-s<seed>`` for the found ones, ``probe`` and ``persona_mean_difference``."""
    target = out / "directions"
    target.mkdir(exist_ok=True)
    for seed in spec.finetune.seeds:
        for path in (result.dir(f"directions-s{seed}") / "directions").glob("*"):
            if not path.name.startswith("random"):
                shutil.copyfile(path, target / f"{path.stem}-s{seed}{path.suffix}")
    if spec.probe.enabled:
        for path in result.dir(PROBE_STEP).glob("*"):
            if path.suffix in (".safetensors", ".json") and path.name != "step.json":
                shutil.copyfile(path, target / path.name)


def finish(spec: PersonaSpec, run: Run, result: PlanResult) -> Path:
    """Gather the rows and measurements into the run directory and write the report."""
    base = _base(spec)
    rows: list[AnswerRow[Any]] = []
    measurements: list[Measurement] = []
    sources = [e.step for e in evaluations(spec, base)]
    for step in sources:
        rows += read_rows(result.dir(step) / "rows.jsonl", PersonaRow)
    if spec.probe.enabled:
        sources.append(PROBE_STEP)
    for seed in spec.finetune.seeds:
        sources += [f"compare-directions-s{seed}", f"project-neutral-s{seed}"]
    for step in sources:
        measurements += read_measurements(
            result.dir(step) / "measurements.jsonl", PersonaMeasurement
        )
    write_rows(run.root / "rows.jsonl", rows)
    write_measurements(run.root / "measurements.jsonl", measurements)
    _copy_directions(spec, result, run.root)
    datasets = {
        ds.name: result.figures[f"dataset-{ds.name}"] for ds in (spec.misaligned, spec.control)
    }
    datasets["realign"] = result.figures["dataset-realign"]
    run.record_datasets(datasets)
    shape = result.figures[LAYER_STEP]
    context = {
        "layer": shape["layer"],
        "blocks": shape["blocks"],
        "width": shape["width"],
        "chance_cosine": chance_cosine(shape["width"]),
        "realign_domain": spec.realign.effective_domain,
        # The same for every seed: the rule depends on the question set alone.
        "heldout_questions": result.figures[f"directions-s{spec.finetune.seeds[0]}"][
            "heldout_questions"
        ],
        "datasets": datasets,
        "organism": organism_report(spec.base_ref, result.figures[base.base]),
    }
    run.write_json("context.json", context)
    return write_report(run.root, spec, rows, measurements, context)
