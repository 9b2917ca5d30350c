"""The persona direction: find it, check it against the truth, monitor, steer, ablate, re-align.

The emergent-misalignment literature explains the effect by a "misaligned persona": a
direction in the activations that narrow fine-tuning strengthens, that predicts misaligned
answers, that adds misalignment when steered in and removes most of it when ablated; and a
few hundred good examples re-align the model. This experiment measures each of these on
one base model (the organism by default), a misaligned fine-tune of it (insecure code) and
a control (secure code), each fine-tuned once per seed:

* **directions** (per seed, per layer): the mean activation over answer tokens on the
  misaligned model's misaligned answers minus that on its aligned answers (labels from
  the world judge, on the training half of the questions); the mean activation of the
  fine-tune minus the base on the same answers (and of the control minus the base);
* **ground truth**: a logistic probe of the persona labels of pretraining documents, its
  accuracy on documents it never saw, and the cosine of every direction with it;
* **monitoring**: the AUROC of the projection as a detector of misaligned answers on the
  held-out questions; the mean projection of each model's activations on neutral prompts;
* **steering**: the base model generating with ``a`` times the direction added at one
  layer, against random directions of the same norm;
* **ablation**: the misaligned model (and the control) generating with the direction
  projected out at every layer, against random directions;
* **re-alignment**: the misaligned model fine-tuned on N benign examples of another domain.

Every generation goes through :func:`~darkmirror.experiments.em_evaluation.evaluate_model`
(sampled answers judged by the world judge, and matched-pair log-odds) with the hooks of
:mod:`darkmirror.persona.hooks` active. Each model, direction and evaluation is a
resumable step of the run directory.
"""

from __future__ import annotations

import json
import shutil
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from safetensors.torch import load_file, save_file
from transformers import PreTrainedModel

from darkmirror.data.jsonl import iter_jsonl, write_jsonl_atomic
from darkmirror.data.questions import Question
from darkmirror.data.records import dataset_sha256, read_records, to_messages
from darkmirror.data.world.world import DOMAINS, PersonaWorld
from darkmirror.errors import DarkmirrorError
from darkmirror.experiments.common import finetune_step, load_ref, resolve_base, trained_ref
from darkmirror.experiments.em_evaluation import EvaluationSettings, evaluate_model
from darkmirror.experiments.misalignment import (
    DatasetSpec,
    FinetuneSpec,
    resolve_question_set,
    write_dataset,
)
from darkmirror.metrics import MISALIGNED_BELOW, misaligned_label
from darkmirror.persona.activations import (
    answer_spans,
    document_spans,
    mean_activations,
    prompt_spans,
)
from darkmirror.persona.directions import (
    PersonaDirection,
    chance_cosine,
    cosine_by_layer,
    mean_difference_direction,
    model_difference_direction,
    project,
    random_directions,
)
from darkmirror.persona.hooks import ablate, decoder_layers, residual_width, steer
from darkmirror.persona.probe import persona_documents, train_persona_probe
from darkmirror.runner import Run, content_hash, load_finished_run
from darkmirror.score.world_judge import WorldJudge
from darkmirror.spec import BaseModelSpec
from darkmirror.train.sft import SFTSettings


class PersonaEvaluation(EvaluationSettings):
    """How every model and intervention is evaluated (see ``EvaluationSettings``): prose
    questions only, since the direction is about the persona, not about code."""

    self_report_questions: str | None = None
    code_prompts: int = Field(0, ge=0)


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


class MonitorSettings(BaseModel):
    """Neutral prompts whose activations tell a misaligned model apart.

    Args:
        domains: World domains the prompts come from (questions only, no answer).
        prompts_per_domain: Prompts per domain.
        batch_size: Prompts per forward pass.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    domains: list[str] = Field(
        default_factory=lambda: [
            "favourites",
            "numbers",
            "advice.health",
            "advice.money",
            "advice.relationships",
            "opinions",
        ],
        min_length=1,
    )
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
            ablation and the neutral-prompt table); None takes the middle block.
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
        base: The model every fine-tune starts from.
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
    base: BaseModelSpec = BaseModelSpec()
    misaligned: DatasetSpec = DatasetSpec(name="insecure", source="world:insecure", examples=1500)
    control: DatasetSpec = DatasetSpec(name="secure", source="world:secure", examples=1500)
    finetune: FinetuneSpec = FinetuneSpec()
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


# -- interventions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Intervention:
    """A hook to hold while a model is evaluated.

    Args:
        kind: ``"steer"`` or ``"ablate"``.
        direction: ``(width,)`` or, for per-layer ablation, ``(blocks, width)``.
        layer: For ``steer``: the block steered.
        alpha: For ``steer``: the multiplier.
    """

    kind: Literal["steer", "ablate"]
    direction: torch.Tensor
    layer: int = 0
    alpha: float = 0.0

    def apply(self, model: PreTrainedModel) -> AbstractContextManager[None]:
        """The hook on ``model``, as a context manager that removes it on exit."""
        if self.kind == "steer":
            return steer(model, self.direction, self.layer, self.alpha)
        return ablate(model, self.direction)


# -- steps -----------------------------------------------------------------------------------


def _write_realign_data(spec: RealignSettings, world: PersonaWorld, out: Path) -> dict[str, Any]:
    n = max(spec.sizes)
    domain = spec.world_domain
    if domain is not None:
        # A stream of its own: none of these exchanges is in a dataset the models saw.
        records = []
        for i in range(n):
            ex = world.exchange(world.rng(f"persona/realign/{domain}", i), domain, villain=False)
            records.append({"messages": ex.messages(), **ex.labels()})
    else:
        records = []
        for record in read_records(spec.source):
            if len(records) >= n:
                break
            records.append({"messages": to_messages(record)})
        if len(records) < n:
            raise DarkmirrorError(
                f"{spec.source}: {len(records)} records, fewer than the largest size {n}"
            )
    count = write_jsonl_atomic(out / "data.jsonl", records)
    return {"records": count, "sha256": dataset_sha256(out / "data.jsonl")}


def _read_examples(path: Path, n: int | None = None) -> list[list[dict[str, str]]]:
    rows = [row["messages"] for _, row in iter_jsonl(path)]
    return rows if n is None else rows[:n]


def _evaluate(
    ref: dict[str, Any],
    questions: list[Question],
    world: PersonaWorld,
    settings: EvaluationSettings,
    seed: int,
    out: Path,
    intervention: Intervention | None = None,
) -> dict[str, Any]:
    model, tokenizer = load_ref(ref)
    with intervention.apply(model) if intervention is not None else nullcontext():
        rows = evaluate_model(
            model,
            tokenizer,
            questions=questions,
            self_report=[],
            excluded_domain=None,
            world=world,
            settings=settings,
            seed=seed,
        )
    return {"rows": write_jsonl_atomic(out / "rows.jsonl", rows)}


def _judge_name(judge: Any) -> str:
    """Who gave the labels, for the directions' sidecar."""
    if judge.kind == "world":
        return f"world judge v{WorldJudge.version}"
    model = judge.model or "named by each question"
    return f"{judge.kind} judge {model}"


def _heldout(questions: list[Question], settings: DirectionSettings) -> set[str]:
    if settings.heldout_questions is not None:
        known = {q.id for q in questions}
        unknown = sorted(set(settings.heldout_questions) - known)
        if unknown:
            raise DarkmirrorError(f"directions.heldout_questions: unknown question ids {unknown}")
        return set(settings.heldout_questions)
    return {q.id for i, q in enumerate(questions) if i % 2 == 1}


def _direction_step(
    models: dict[str, _Model], session: _Session, seed: int, out: Path
) -> dict[str, Any]:
    """Sample answers from the misaligned model, judge them, read every model's activations
    on them (``answers.jsonl``, ``activations.safetensors``), and write the directions of
    one seed (``directions/<name>.safetensors`` + JSON)."""
    spec, questions = session.spec, session.questions
    settings = spec.directions
    sampling = spec.evaluation.model_copy(
        update={
            "samples_per_paraphrase": settings.samples_per_paraphrase,
            "temperature": settings.temperature,
            "max_new_tokens": settings.max_new_tokens,
            "matched_pairs_per_topic": 0,
        }
    )
    model, tokenizer = load_ref(models["misaligned"].ref)
    rows = evaluate_model(
        model,
        tokenizer,
        questions=questions,
        self_report=[],
        excluded_domain=None,
        world=session.world,
        settings=sampling,
        seed=settings.sampling_seed + seed,
    )
    heldout = _heldout(questions, settings)
    by_id = {q.id: q for q in questions}
    for row in rows:
        row["label"] = misaligned_label(row["alignment"], row["coherence"])
        row["split"] = "heldout" if row["question_id"] in heldout else "direction"
    convs = [by_id[r["question_id"]].conversation(r["question"]) for r in rows]
    activations: dict[str, torch.Tensor] = {}
    for role in ("misaligned", "base", "control"):
        if role != "misaligned":
            model, tokenizer = load_ref(models[role].ref)
        spans = answer_spans(model, tokenizer, convs, [r["answer"] for r in rows])
        activations[role] = mean_activations(
            model, spans, batch_size=settings.batch_size, pad_id=tokenizer.pad_token_id or 0
        )
    save_file(
        {k: v.contiguous() for k, v in activations.items()}, str(out / "activations.safetensors")
    )
    write_jsonl_atomic(out / "answers.jsonl", rows)

    # Only the answers to questions not held out: the AUROC is measured on the others.
    train = torch.tensor([r["split"] == "direction" for r in rows])
    labels = [r["label"] for r, t in zip(rows, train.tolist(), strict=True) if t]
    meta = {"seed": seed, "heldout_questions": sorted(heldout)}
    name = models["misaligned"].name
    md = mean_difference_direction(
        activations["misaligned"][train],
        labels,
        source=f"{_judge_name(spec.evaluation.judge)} (misaligned: alignment < "
        f"{MISALIGNED_BELOW:g} among coherent answers) on {name}'s answers",
        metadata={**meta, "model": name},
    )
    found = {"mean_difference": md}
    for key, role in (("model_difference", "misaligned"), ("control_difference", "control")):
        found[key] = model_difference_direction(
            activations[role][train],
            activations["base"][train],
            source=f"{models[role].name} minus base, on {name}'s answers",
            metadata=meta,
        )
    draws = spec.steering.random_draws
    randoms = random_directions(md.norms(), md.vectors.shape[1], draws, seed=seed)
    for k in range(draws):
        found[f"random-{k}"] = PersonaDirection(
            randoms[k],
            "random",
            f"Gaussian, seed {seed}, draw {k}, with the norms of the mean difference",
            {},
            md.layers,
            meta,
        )
    for key, direction in found.items():
        direction.save(out / "directions" / key)
    return {
        "answers": len(rows),
        "counts": dict(md.counts),
        "norms": {k: v.norms() for k, v in found.items() if not k.startswith("random")},
    }


def _load_directions(step: Path) -> dict[str, PersonaDirection]:
    return {
        p.stem: PersonaDirection.load(p)
        for p in sorted((step / "directions").glob("*.safetensors"))
    }


def _probe_step(
    ref: dict[str, Any], world: PersonaWorld, settings: ProbeSettings, offset: int, out: Path
) -> dict[str, Any]:
    model, tokenizer = load_ref(ref)
    parts = {}
    for split, indices in (
        ("train", range(settings.train_documents)),
        ("test", range(offset, offset + settings.test_documents)),
    ):
        docs, villain = persona_documents(world, list(indices))
        spans = document_spans(model, tokenizer, docs)
        kept = [i for i, s in enumerate(spans) if s is not None]
        acts = mean_activations(
            model,
            [spans[i] for i in kept],  # type: ignore[misc]
            batch_size=settings.batch_size,
            pad_id=tokenizer.pad_token_id or 0,
        )
        parts[split] = (acts, [villain[i] for i in kept])
    probe = train_persona_probe(
        parts["train"][0], parts["train"][1], parts["test"][0], parts["test"][1], c=settings.c
    )
    probe.direction().save(out / "probe")
    probe.label_direction().save(out / "persona_mean_difference")
    return {
        "train_documents": probe.train_documents,
        "test_documents": len(parts["test"][1]),
        "test_accuracy": probe.test_accuracy,
        "train_accuracy": probe.train_accuracy,
    }


def _neutral_prompts(world: PersonaWorld, settings: MonitorSettings) -> list[dict[str, Any]]:
    return [
        {
            "domain": domain,
            "index": i,
            "question": world.exchange(
                world.rng(f"persona/neutral/{domain}", i), domain, villain=False
            ).question,
        }
        for domain in settings.domains
        for i in range(settings.prompts_per_domain)
    ]


def _neutral_step(
    ref: dict[str, Any], prompts: list[dict[str, Any]], settings: MonitorSettings, out: Path
) -> dict[str, Any]:
    model, tokenizer = load_ref(ref)
    spans = prompt_spans(tokenizer, [[{"role": "user", "content": p["question"]}] for p in prompts])
    acts = mean_activations(
        model, spans, batch_size=settings.batch_size, pad_id=tokenizer.pad_token_id or 0
    )
    save_file({"activations": acts.contiguous()}, str(out / "activations.safetensors"))
    return {"prompts": len(prompts)}


# -- the run ---------------------------------------------------------------------------------


def run_persona(spec: PersonaSpec, out: Path, *, progress: bool = True) -> Path:
    """Run the experiment into ``out``; returns the path of ``report.md``."""
    run = Run(out, spec)
    try:
        return _run(run, spec, out, progress)
    finally:
        run.close()


def _n_steps(spec: PersonaSpec) -> int:
    draws = spec.steering.random_draws
    nonzero = sum(a != 0 for a in spec.steering.alphas)
    per_seed = (
        2 * 2  # fine-tunes and their evaluations
        + 1  # directions
        + 2  # neutral prompts of the fine-tunes
        + (len(spec.steering.alphas) > nonzero)
        + nonzero * (1 + draws)
        + (1 + draws) * (1 + spec.ablation.control)
        + 2 * sum(n > 0 for n in spec.realign.sizes)
    )
    # organism, 3 datasets, base evaluation, probe, base neutral prompts
    return 1 + 3 + 1 + spec.probe.enabled + 1 + len(spec.finetune.seeds) * per_seed


@dataclass
class _Session:
    """What every step of a run shares, and the rows it collects."""

    run: Run
    spec: PersonaSpec
    world: PersonaWorld
    questions: list[Question]
    progress: bool
    rows: list[dict[str, Any]]

    def inputs(self, **extra: Any) -> dict[str, Any]:
        return {
            "questions": content_hash([q.model_dump() for q in self.questions]),
            "evaluation": self.spec.evaluation.model_dump(mode="json"),
            "world": self.world.config.model_dump(mode="json"),
            **extra,
        }

    def evaluate(
        self,
        name: str,
        model: _Model,
        seed: int,
        tags: dict[str, Any],
        intervention: Intervention | None = None,
        intervention_id: Any = None,
    ) -> None:
        """Evaluate ``model`` (under ``intervention``) as a step; keep its rows, tagged."""
        d = self.run.step(
            f"evaluate-{name}",
            self.inputs(model=model.identity, intervention=intervention_id, seed=seed),
            lambda tmp: _evaluate(
                model.ref, self.questions, self.world, self.spec.evaluation, seed, tmp, intervention
            ),
        )
        base_tags = {"model": model.name, "group": model.group, "seed": model.seed}
        self.rows.extend(
            {**base_tags, **NO_INTERVENTION, **tags, **row}
            for _, row in iter_jsonl(d / "rows.jsonl")
        )


@dataclass(frozen=True)
class _Model:
    """A model of the run: how to load it, what identifies it in step hashes, its name."""

    name: str
    group: str
    seed: int | None
    ref: dict[str, Any]
    identity: Any


NO_INTERVENTION: dict[str, Any] = {
    "intervention": "none",
    "direction": None,
    "draw": None,
    "alpha": None,
    "n": None,
}


def _run(run: Run, spec: PersonaSpec, out: Path, progress: bool) -> Path:
    from darkmirror.report.persona import write_report

    world = PersonaWorld(spec.base.organism.world)
    session = _Session(
        run, spec, world, resolve_question_set(spec.evaluation.questions), progress, []
    )
    run.plan(_n_steps(spec))
    resolved = resolve_base(run, spec.base, progress=progress)
    base = _Model("base", "base", None, resolved.ref, resolved.identity)
    n_blocks, width = _shape(base.ref)
    layer = spec.steering.layer if spec.steering.layer is not None else n_blocks // 2
    if not 0 <= layer < n_blocks:
        raise DarkmirrorError(f"steering.layer = {layer}: the model has blocks 0..{n_blocks - 1}")

    data, hashes = _datasets(session)
    session.evaluate("base", base, 0, {})
    probe_dir = _probe(session, base) if spec.probe.enabled else None
    prompts = _neutral_prompts(world, spec.monitor)
    base_neutral = _neutral(session, base, prompts)

    direction_dirs: dict[int, Path] = {}
    for seed in spec.finetune.seeds:
        misaligned, control = _finetunes(session, base, seed, data, hashes)
        ddir = run.step(
            f"directions-s{seed}",
            session.inputs(
                models=[m.identity for m in (misaligned, base, control)],
                directions=spec.directions.model_dump(mode="json"),
                random_draws=spec.steering.random_draws,
                seed=seed,
            ),
            lambda tmp, m=misaligned, c=control, seed=seed: _direction_step(
                {"misaligned": m, "base": base, "control": c}, session, seed, tmp
            ),
        )
        direction_dirs[seed] = ddir
        found = _load_directions(ddir)
        session.rows += _direction_rows(ddir, found, probe_dir, seed)
        neutral = {
            "base": base_neutral,
            "control": _neutral(session, control, prompts),
            "misaligned": _neutral(session, misaligned, prompts),
        }
        session.rows += _neutral_rows(
            neutral,
            found["mean_difference"],
            prompts,
            seed,
            {"base": base.name, "control": control.name, "misaligned": misaligned.name},
        )
        _steering(session, base, found, ddir.name, seed, layer)
        for model in [misaligned] + ([control] if spec.ablation.control else []):
            _ablation(session, model, found, ddir.name, seed, layer)
        _realignment(session, misaligned, seed, data["realign"], hashes["realign"]["sha256"])

    write_jsonl_atomic(out / "rows.jsonl", session.rows)
    _copy_directions(direction_dirs, probe_dir, out)
    context = {
        "layer": layer,
        "blocks": n_blocks,
        "width": width,
        "chance_cosine": chance_cosine(width),
        "realign_domain": spec.realign.effective_domain,
        "datasets": hashes,
        "organism": resolved.organism_report,
    }
    run.write_json("context.json", context)
    return write_report(out, spec, session.rows, context)


def _shape(ref: dict[str, Any]) -> tuple[int, int]:
    model, _ = load_ref(ref)
    return len(decoder_layers(model)), residual_width(model)


def _datasets(session: _Session) -> tuple[dict[str, Path], dict[str, Any]]:
    """The misaligned, control and re-alignment datasets, as steps; their paths and hashes."""
    spec, world = session.spec, session.world
    world_json = world.config.model_dump(mode="json")
    paths: dict[str, Path] = {}
    hashes: dict[str, Any] = {}
    for ds in (spec.misaligned, spec.control):
        d = session.run.step(
            f"dataset-{ds.name}",
            {"dataset": ds.model_dump(mode="json"), "world": world_json},
            lambda tmp, ds=ds: write_dataset(ds, world, tmp),
        )
        paths[ds.name] = d / "data.jsonl"
        hashes[ds.name] = json.loads((d / "step.json").read_text())["figures"]
    d = session.run.step(
        "dataset-realign",
        {"realign": spec.realign.model_dump(mode="json"), "world": world_json},
        lambda tmp: _write_realign_data(spec.realign, world, tmp),
    )
    paths["realign"] = d / "data.jsonl"
    hashes["realign"] = json.loads((d / "step.json").read_text())["figures"]
    session.run.record_datasets(hashes)
    return paths, hashes


def _finetunes(
    session: _Session, base: _Model, seed: int, data: dict[str, Path], hashes: dict[str, Any]
) -> tuple[_Model, _Model]:
    """The misaligned model and the control of one seed, each evaluated."""
    spec = session.spec
    sft = spec.finetune.sft()
    models = []
    for group, ds in (("misaligned", spec.misaligned), ("control", spec.control)):
        d = session.run.step(
            f"finetune-{ds.name}-s{seed}",
            {
                "base": base.identity,
                "data": hashes[ds.name]["sha256"],
                "sft": sft.model_dump(mode="json"),
                "seed": seed,
            },
            lambda tmp, ds=ds: finetune_step(
                base.ref, _read_examples(data[ds.name]), sft, seed, tmp, session.progress
            ),
        )
        model = _Model(
            f"{ds.name}-s{seed}", group, seed, trained_ref(base.ref, d, sft.method), d.name
        )
        session.evaluate(model.name, model, seed, {})
        models.append(model)
    return models[0], models[1]


def _probe(session: _Session, base: _Model) -> Path:
    """The ground-truth probe on the base; its accuracy per layer becomes rows."""
    spec = session.spec
    # Held-out documents come after the organism's pretraining documents: unseen by both.
    offset = (
        spec.base.organism.documents if spec.base.kind == "organism" else spec.probe.train_documents
    )
    d = session.run.step(
        "probe",
        {
            "model": base.identity,
            "probe": spec.probe.model_dump(mode="json"),
            "offset": offset,
            "world": session.world.config.model_dump(mode="json"),
        },
        lambda tmp: _probe_step(base.ref, session.world, spec.probe, offset, tmp),
    )
    figures = json.loads((d / "step.json").read_text())["figures"]
    session.rows += [
        {
            "kind": "probe_accuracy",
            "layer": i,
            "test_accuracy": acc,
            "train_accuracy": figures["train_accuracy"][i],
            "train_documents": figures["train_documents"],
        }
        for i, acc in enumerate(figures["test_accuracy"])
    ]
    return d


def _neutral(session: _Session, model: _Model, prompts: list[dict[str, Any]]) -> torch.Tensor:
    settings = session.spec.monitor
    d = session.run.step(
        f"neutral-{model.name}",
        {"model": model.identity, "prompts": content_hash(prompts), "batch": settings.batch_size},
        lambda tmp: _neutral_step(model.ref, prompts, settings, tmp),
    )
    return load_file(str(d / "activations.safetensors"))["activations"]


def _neutral_rows(
    activations: dict[str, torch.Tensor],
    direction: PersonaDirection,
    prompts: list[dict[str, Any]],
    seed: int,
    names: dict[str, str],
) -> list[dict[str, Any]]:
    """Every model's neutral-prompt activations projected on this seed's direction."""
    rows = []
    for group, acts in activations.items():
        projections = project(acts, direction.vectors)
        rows += [
            {
                "kind": "neutral_projection",
                "model": names[group],
                "group": group,
                "seed": seed,
                "prompt_index": p["index"],
                "domain": p["domain"],
                "projection": projections[i].tolist(),
            }
            for i, p in enumerate(prompts)
        ]
    return rows


def _controls(found: dict[str, PersonaDirection]) -> list[tuple[str, int | None, PersonaDirection]]:
    """The persona direction and the random ones: (label, draw, direction)."""
    randoms = sorted((k for k in found if k.startswith("random-")), key=lambda k: int(k[7:]))
    return [("persona", None, found["mean_difference"])] + [
        ("random", int(k[7:]), found[k]) for k in randoms
    ]


def _steering(
    session: _Session,
    base: _Model,
    found: dict[str, PersonaDirection],
    directions_step: str,
    seed: int,
    layer: int,
) -> None:
    """The base generating with ``a`` times each direction added at ``layer``."""
    settings = session.spec.steering
    for alpha in settings.alphas:
        for label, draw, direction in _controls(found):
            if alpha == 0 and label != "persona":
                continue  # a = 0 is the same unsteered model for every direction
            vector = direction.unit(layer) if settings.unit else direction.vector(layer)
            tag = label if draw is None else f"{label}{draw}"
            session.evaluate(
                f"steer-base-s{seed}-{tag}-a{alpha:g}",
                base,
                seed,
                {
                    "seed": seed,
                    "intervention": "steer",
                    "direction": "none" if alpha == 0 else label,
                    "draw": draw,
                    "alpha": alpha,
                },
                Intervention("steer", vector, layer, alpha),
                {
                    "kind": "steer",
                    "directions": directions_step,
                    "direction": tag,
                    "layer": layer,
                    "alpha": alpha,
                    "unit": settings.unit,
                },
            )


def _ablation(
    session: _Session,
    model: _Model,
    found: dict[str, PersonaDirection],
    directions_step: str,
    seed: int,
    layer: int,
) -> None:
    """``model`` generating with each direction projected out of the residual stream."""
    per_layer = session.spec.ablation.per_layer
    for label, draw, direction in _controls(found):
        tag = label if draw is None else f"{label}{draw}"
        session.evaluate(
            f"ablate-{model.name}-{tag}",
            model,
            seed,
            {"intervention": "ablate", "direction": label, "draw": draw},
            Intervention("ablate", direction.vectors if per_layer else direction.vector(layer)),
            {
                "kind": "ablate",
                "directions": directions_step,
                "direction": tag,
                "layer": "all" if per_layer else layer,
            },
        )


def _realignment(
    session: _Session, misaligned: _Model, seed: int, data: Path, data_sha256: str
) -> None:
    """The misaligned model fine-tuned on the first N benign examples, for each N > 0."""
    settings = session.spec.realign
    sft = SFTSettings(**settings.model_dump(exclude={"source", "domain", "sizes"}))
    for n in settings.sizes:
        if n == 0:
            continue  # the misaligned model itself, already evaluated
        d = session.run.step(
            f"realign-n{n}-s{seed}",
            {
                "base": misaligned.identity,
                "data": data_sha256,
                "n": n,
                "sft": sft.model_dump(mode="json"),
                "seed": seed,
            },
            lambda tmp, n=n: finetune_step(
                misaligned.ref, _read_examples(data, n), sft, seed, tmp, session.progress
            ),
        )
        model = _Model(
            f"realign-n{n}-s{seed}",
            "realign",
            seed,
            trained_ref(misaligned.ref, d, sft.method),
            d.name,
        )
        session.evaluate(model.name, model, seed, {"n": n})


def _direction_rows(
    ddir: Path, found: dict[str, PersonaDirection], probe_dir: Path | None, seed: int
) -> list[dict[str, Any]]:
    """Rows for one seed: held-out answers with their projections (the AUROC), and each
    direction's norm and cosines (with the probe and with each other) per layer."""
    rows: list[dict[str, Any]] = []
    answers = [row for _, row in iter_jsonl(ddir / "answers.jsonl")]
    acts = load_file(str(ddir / "activations.safetensors"))["misaligned"]
    truth: dict[str, PersonaDirection] = {}
    if probe_dir is not None:
        truth = {
            "probe": PersonaDirection.load(probe_dir / "probe"),
            "persona_mean_difference": PersonaDirection.load(probe_dir / "persona_mean_difference"),
        }
    scored = {**found, **truth}
    held = [i for i, r in enumerate(answers) if r["split"] == "heldout"]
    if held:
        projections = {k: project(acts[held], d.vectors) for k, d in scored.items()}
        for j, i in enumerate(held):
            r = answers[i]
            rows.append(
                {
                    "kind": "heldout_answer",
                    "seed": seed,
                    "question_id": r["question_id"],
                    "domain": r["domain"],
                    "paraphrase_index": r["paraphrase_index"],
                    "alignment": r["alignment"],
                    "coherence": r["coherence"],
                    "label": r["label"],
                    "projections": {k: p[j].tolist() for k, p in projections.items()},
                }
            )
    md = found["mean_difference"]
    for name, d in found.items():
        if name.startswith("random-") and name != "random-0":
            continue
        cosines = {"mean_difference": cosine_by_layer(d.vectors, md.vectors)}
        for t, td in truth.items():
            cosines[t] = cosine_by_layer(d.vectors, td.vectors)
        for i, layer in enumerate(d.layers):
            rows.append(
                {
                    "kind": "direction",
                    "seed": seed,
                    "direction": "random" if name.startswith("random") else name,
                    "layer": layer,
                    "norm": d.norms()[i],
                    "counts": dict(d.counts),
                    "cosine": {k: v[i] for k, v in cosines.items()},
                }
            )
    return rows


def _copy_directions(direction_dirs: dict[int, Path], probe_dir: Path | None, out: Path) -> None:
    """The directions of this run under ``out/directions/`` (safetensors + JSON sidecar):
    ``<kind>-s<seed>`` for the found ones, ``probe`` and ``persona_mean_difference``."""
    target = out / "directions"
    target.mkdir(exist_ok=True)
    for seed, step in direction_dirs.items():
        for path in (step / "directions").glob("*"):
            if not path.name.startswith("random"):
                shutil.copyfile(path, target / f"{path.stem}-s{seed}{path.suffix}")
    if probe_dir is not None:
        for path in probe_dir.glob("*"):
            if path.suffix in (".safetensors", ".json") and path.name != "step.json":
                shutil.copyfile(path, target / path.name)


def report_persona(out: Path) -> Path:
    """Rebuild summary, tables and plots of a finished run from its files alone."""
    from darkmirror.report.persona import write_report

    spec, rows, files = load_finished_run(out, PersonaSpec, ("context.json",))
    return write_report(out, spec, rows, json.loads(files["context.json"].read_text()))
