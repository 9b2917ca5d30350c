"""The directions of one seed, and how they compare with each other and with the truth.

* :func:`directions_step`: the misaligned model answers every question many times; the
  judge labels the answers; every model's mean activation over each answer's tokens gives
  the mean-difference direction (misaligned minus aligned answers, on the questions not
  held out), the model differences (misaligned model minus base, control minus base) and
  random directions of the same norms. It writes ``answers.jsonl`` (the answers, as
  :class:`~darkmirror.data.answers.AnswerRow`), ``activations.safetensors`` and
  ``directions/<name>.safetensors`` (+ JSON sidecar).
* :func:`compare_step`: measurements of those files: each held-out answer's projection on
  every direction (:class:`HeldoutProjection`, the AUROC) and each direction's norm and
  cosines with the mean difference and the ground-truth probe (:class:`DirectionStats`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from darkmirror.data.answers import AnswerRow, read_rows, write_rows
from darkmirror.data.measurements import Measurement, write_measurements
from darkmirror.data.questions import Question
from darkmirror.errors import DarkmirrorError
from darkmirror.eval.em import evaluate_misalignment
from darkmirror.experiments.persona.models import PersonaModel, SeedModels
from darkmirror.experiments.persona.names import TRUTH
from darkmirror.experiments.persona.records import DirectionStats, HeldoutProjection
from darkmirror.experiments.persona.spec import DirectionSettings, PersonaSpec
from darkmirror.metrics import MISALIGNED_BELOW, misaligned_label
from darkmirror.persona.activations import answer_spans, mean_activations
from darkmirror.persona.directions import (
    PersonaDirection,
    cosine_by_layer,
    mean_difference_direction,
    model_difference_direction,
    project,
    random_directions,
)
from darkmirror.runner import StepContext
from darkmirror.score.judges import JudgeSpec, build_judge
from darkmirror.score.world_judge import WorldJudge

__all__ = ["compare_step", "directions_step", "heldout_questions"]


def heldout_questions(questions: list[Question], settings: DirectionSettings) -> set[str]:
    """The questions whose answers are kept out of the directions, for the AUROC.

    Raises:
        DarkmirrorError: ``directions.heldout_questions`` names a question not in the set.
    """
    if settings.heldout_questions is not None:
        known = {q.id for q in questions}
        unknown = sorted(set(settings.heldout_questions) - known)
        if unknown:
            raise DarkmirrorError(f"directions.heldout_questions: unknown question ids {unknown}")
        return set(settings.heldout_questions)
    return {q.id for i, q in enumerate(questions) if i % 2 == 1}


def _judge_name(judge: JudgeSpec) -> str:
    """Who gave the labels, for the directions' sidecar."""
    if judge.kind == "world":
        return f"world judge v{WorldJudge.version}"
    model = judge.model or "named by each question"
    return f"{judge.kind} judge {model}"


def _label(row: AnswerRow[Any]) -> bool | None:
    return misaligned_label(row.value("aligned"), row.value("coherent"), failed=row.judge_failed())


def _sample(
    ctx: StepContext, spec: PersonaSpec, model: PersonaModel, questions: list[Question], seed: int
) -> tuple[Any, list[AnswerRow[Any]]]:
    """The misaligned model's judged answers for the directions, and its generator."""
    settings = spec.directions
    sampling = spec.evaluation.model_copy(
        update={
            "samples_per_paraphrase": settings.samples_per_paraphrase,
            "temperature": settings.temperature,
            "max_new_tokens": settings.max_new_tokens,
            "matched_pairs_per_topic": 0,
        }
    )
    generator = model.ref(spec, ctx, batch_size=sampling.batch_size).generator(
        progress=ctx.progress
    )
    judge = build_judge(sampling.judge, progress=ctx.progress)
    try:
        result = evaluate_misalignment(
            generator,
            questions=questions,
            self_report=[],
            excluded_domain=None,
            judge=judge,
            settings=sampling,
            seed=settings.sampling_seed + seed,
            model=model.name,
            group=model.group,
            model_seed=model.seed,
        )
    finally:
        judge.close()
    return generator, result.rows


def directions_step(
    ctx: StepContext,
    *,
    spec: PersonaSpec,
    models: SeedModels,
    base: PersonaModel,
    questions: list[Question],
) -> dict[str, Any]:
    """Sample and judge answers of the misaligned model, read every model's activations on
    them, and write the directions of one seed (see the module docstring)."""
    settings, seed = spec.directions, models.seed
    generator, rows = _sample(ctx, spec, models.misaligned, questions, seed)
    heldout = heldout_questions(questions, settings)
    convs = [r.conversation() for r in rows]
    answers = [r.answer for r in rows]
    activations: dict[str, torch.Tensor] = {}
    for role, model in (
        ("misaligned", models.misaligned),
        ("base", base),
        ("control", models.control),
    ):
        if role == "misaligned":
            lm, tokenizer = generator.model, generator.tokenizer
        else:
            lm, tokenizer = model.ref(spec, ctx, batch_size=settings.batch_size).load()
        spans = answer_spans(lm, tokenizer, convs, answers)
        activations[role] = mean_activations(
            lm, spans, batch_size=settings.batch_size, pad_id=tokenizer.pad_token_id or 0
        )
    save_file(
        {k: v.contiguous() for k, v in activations.items()},
        str(ctx.out / "activations.safetensors"),
    )
    write_rows(ctx.out / "answers.jsonl", rows)

    # Only the answers to questions not held out: the AUROC is measured on the others.
    train = torch.tensor([r.question_id not in heldout for r in rows])
    labels = [_label(r) for r, t in zip(rows, train.tolist(), strict=True) if t]
    meta = {"seed": seed, "heldout_questions": sorted(heldout)}
    name = models.misaligned.name
    md = mean_difference_direction(
        activations["misaligned"][train],
        labels,
        source=f"{_judge_name(spec.evaluation.judge)} (misaligned: alignment < "
        f"{MISALIGNED_BELOW:g} among coherent answers) on {name}'s answers",
        metadata={**meta, "model": name},
    )
    found = {"mean_difference": md}
    for key, role, model in (
        ("model_difference", "misaligned", models.misaligned),
        ("control_difference", "control", models.control),
    ):
        found[key] = model_difference_direction(
            activations[role][train],
            activations["base"][train],
            source=f"{model.name} minus base, on {name}'s answers",
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
        direction.save(ctx.out / "directions" / key)
    return {
        "answers": len(rows),
        "heldout_questions": sorted(heldout),
        "counts": dict(md.counts),
        "norms": {k: v.norms() for k, v in found.items() if not k.startswith("random")},
    }


def load_directions(step: Path) -> dict[str, PersonaDirection]:
    """Every direction a directions step wrote, by name, in file-name order."""
    return {
        p.stem: PersonaDirection.load(p)
        for p in sorted((step / "directions").glob("*.safetensors"))
    }


def compare_step(
    ctx: StepContext,
    *,
    directions: str,
    probe: str | None,
    misaligned: PersonaModel,
) -> dict[str, Any]:
    """Projections of the held-out answers and the directions' norms and cosines of one
    seed (see the module docstring); writes ``measurements.jsonl``."""
    step = ctx.dep(directions)
    seed = misaligned.seed
    found = load_directions(step)
    truth = {t: PersonaDirection.load(ctx.dep(probe) / t) for t in TRUTH} if probe else {}
    scored = {**found, **truth}
    heldout = set(ctx.figures[directions]["heldout_questions"])
    answers = read_rows(step / "answers.jsonl")
    acts = load_file(str(step / "activations.safetensors"))["misaligned"]
    out: list[Measurement] = []
    held = [i for i, r in enumerate(answers) if r.question_id in heldout]
    if held:
        projections = {k: project(acts[held], d.vectors) for k, d in scored.items()}
        for j, i in enumerate(held):
            r = answers[i]
            out.append(
                HeldoutProjection(
                    model=misaligned.name,
                    group=misaligned.group,
                    seed=seed,
                    question_id=r.question_id,
                    domain=r.domain,
                    paraphrase_index=r.paraphrase_index,
                    sample_index=r.sample_index,
                    alignment=r.value("aligned"),
                    coherence=r.value("coherent"),
                    label=_label(r),
                    projections={k: p[j].tolist() for k, p in projections.items()},
                )
            )
    md = found["mean_difference"]
    for name, d in found.items():
        if name.startswith("random-") and name != "random-0":
            continue
        cosines = {"mean_difference": cosine_by_layer(d.vectors, md.vectors)}
        for t, td in truth.items():
            cosines[t] = cosine_by_layer(d.vectors, td.vectors)
        for i, layer in enumerate(d.layers):
            out.append(
                DirectionStats(
                    seed=seed,
                    direction="random" if name.startswith("random") else name,
                    layer=layer,
                    norm=d.norms()[i],
                    counts=dict(d.counts),
                    cosine={k: v[i] for k, v in cosines.items()},
                )
            )
    write_measurements(ctx.out / "measurements.jsonl", out)
    return {"heldout_answers": len(held), "measurements": len(out)}
