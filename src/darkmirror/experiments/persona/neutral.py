"""Neutral prompts: does a model's activation on a plain question give it away?

Each model's mean activation over the tokens of questions of ordinary world domains (no
answer, nothing about code) is a step of its own (:func:`neutral_step`); the projection of
every model's activations on a seed's mean-difference direction is another
(:func:`projection_step`), whose :class:`NeutralProjection` measurements the report
compares between models.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from safetensors.torch import load_file, save_file

from darkmirror.data.measurements import write_measurements
from darkmirror.data.world.world import PersonaWorld
from darkmirror.experiments.persona.models import PersonaModel
from darkmirror.experiments.persona.records import NeutralProjection
from darkmirror.experiments.persona.spec import MonitorSettings, PersonaSpec
from darkmirror.persona.activations import mean_activations, prompt_spans
from darkmirror.persona.directions import PersonaDirection, project
from darkmirror.runner import StepContext

if TYPE_CHECKING:
    import torch

__all__ = ["neutral_prompts", "neutral_step", "projection_step"]


def neutral_prompts(world: PersonaWorld, settings: MonitorSettings) -> list[dict[str, Any]]:
    """``{"domain", "index", "question"}`` for each prompt, a stream of the world's own."""
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


def neutral_step(
    ctx: StepContext, *, spec: PersonaSpec, model: PersonaModel, prompts: list[dict[str, Any]]
) -> dict[str, Any]:
    """The model's mean activation on each prompt (``activations.safetensors``)."""
    settings = spec.monitor
    lm, tokenizer = model.ref(spec, ctx, batch_size=settings.batch_size).load()
    spans = prompt_spans(tokenizer, [[{"role": "user", "content": p["question"]}] for p in prompts])
    acts = mean_activations(
        lm, spans, batch_size=settings.batch_size, pad_id=tokenizer.pad_token_id or 0
    )
    save_file({"activations": acts.contiguous()}, str(ctx.out / "activations.safetensors"))
    return {"prompts": len(prompts)}


def projection_step(
    ctx: StepContext,
    *,
    neutral: dict[str, tuple[PersonaModel, str]],
    directions: str,
    seed: int,
    prompts: list[dict[str, Any]],
) -> dict[str, Any]:
    """Every model's neutral-prompt activations projected on this seed's mean-difference
    direction (``measurements.jsonl``).

    Args:
        ctx: The step's context.
        neutral: For each arm (``base``, ``control``, ``misaligned``): the model and its
            neutral step, in the order of the measurements.
        directions: The seed's directions step.
        seed: The seed.
        prompts: The neutral prompts.
    """
    direction = PersonaDirection.load(ctx.dep(directions) / "directions" / "mean_difference")
    out = []
    for group, (model, step) in neutral.items():
        acts: torch.Tensor = load_file(str(ctx.dep(step) / "activations.safetensors"))[
            "activations"
        ]
        projections = project(acts, direction.vectors)
        out += [
            NeutralProjection(
                model=model.name,
                group=group,
                seed=seed,
                domain=p["domain"],
                prompt_index=p["index"],
                projection=projections[i].tolist(),
            )
            for i, p in enumerate(prompts)
        ]
    write_measurements(ctx.out / "measurements.jsonl", out)
    return {"measurements": len(out)}
