"""One evaluation of the persona experiment: a model, under an intervention or none.

The model answers the question set and its matched pairs through the evaluation core
(:func:`~darkmirror.eval.em.evaluate_misalignment`) with the intervention's hook of
:mod:`darkmirror.persona.hooks` held around the whole call, so the sampled answers and the
likelihoods of the matched pairs are both the steered (or ablated) model's. Its answers
become :data:`~darkmirror.experiments.persona.records.PersonaRow` rows and its log-odds
:class:`~darkmirror.experiments.persona.records.PersonaLogOdds`, both tagged with the
:class:`~darkmirror.experiments.persona.records.Condition`.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from darkmirror.data.answers import write_rows
from darkmirror.data.measurements import write_measurements
from darkmirror.data.questions import Question
from darkmirror.data.world.world import PersonaWorld
from darkmirror.eval.em import evaluate_misalignment
from darkmirror.experiments.datasets import world_config
from darkmirror.experiments.persona.interventions import LAYER_STEP
from darkmirror.experiments.persona.models import Evaluation
from darkmirror.experiments.persona.records import Condition, PersonaLogOdds
from darkmirror.experiments.persona.spec import PersonaSpec
from darkmirror.models.ref import OrganismModel
from darkmirror.runner import StepContext
from darkmirror.score.judges import build_judge

__all__ = ["evaluate_step"]


def evaluate_step(
    ctx: StepContext, *, spec: PersonaSpec, evaluation: Evaluation, questions: list[Question]
) -> dict[str, Any]:
    """Evaluate one model (under its intervention); write ``rows.jsonl`` and
    ``measurements.jsonl``.

    Args:
        ctx: The step's context; depends on the model's steps, and for an intervention on
            the directions step and :data:`LAYER_STEP`.
        spec: The run's spec.
        evaluation: What to evaluate.
        questions: The question set.
    """
    settings = spec.evaluation
    model = evaluation.model
    generator = model.ref(spec, ctx, batch_size=settings.batch_size).generator(
        progress=ctx.progress
    )
    language_model = generator.model  # type: ignore[attr-defined]
    hook = evaluation.intervention
    if hook is not None and evaluation.directions is not None:
        layer = int(ctx.figures[LAYER_STEP]["layer"])
        condition = hook.condition(layer)
        held = hook.hook(language_model, ctx.dep(evaluation.directions), layer)
    else:
        condition = Condition(n=evaluation.n)
        held = nullcontext()
    probes = settings.probes_for(isinstance(spec.base, OrganismModel))
    judge = build_judge(settings.judge, progress=ctx.progress)
    try:
        with held:
            result = evaluate_misalignment(
                generator,
                questions=questions,
                self_report=[],
                excluded_domain=None,
                judge=judge,
                settings=settings,
                seed=model.seed or 0,
                model=model.name,
                group=model.group,
                model_seed=model.seed,
                world=PersonaWorld(world_config(spec.base_ref)) if probes else None,
                likelihood_model=(language_model, generator.tokenizer),  # type: ignore[attr-defined]
            )
    finally:
        judge.close()
    rows = [r.model_copy(update={"extension": condition}) for r in result.rows]
    pairs = [PersonaLogOdds.of(m, condition) for m in result.measurements]
    write_rows(ctx.out / "rows.jsonl", rows)
    write_measurements(ctx.out / "measurements.jsonl", pairs)
    return {"rows": len(rows), "measurements": len(pairs)}
