"""The models of a persona run and the evaluations the plan declares for them.

A :class:`PersonaModel` says how a step finds its model without the plan loading anything:
the base step, then the fine-tune steps applied in turn (the misaligned model is the base
fine-tuned once; a re-aligned model, fine-tuned twice). :func:`evaluations` lists every
evaluation of a run in the order of the report's rows: the plan declares them from it, and
``finish`` gathers their rows in the same order.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from darkmirror.experiments.finetune import base_model, trained_model
from darkmirror.experiments.persona.interventions import Intervention, compared_directions
from darkmirror.experiments.persona.spec import PersonaSpec
from darkmirror.models.ref import HFModel
from darkmirror.runner import StepContext

__all__ = ["Evaluation", "PersonaModel", "SeedModels", "evaluations", "seed_models"]

Group = Literal["base", "misaligned", "control", "realign"]


@dataclass(frozen=True)
class PersonaModel:
    """A model of the run.

    Args:
        name: Its name in the rows (``base``, ``insecure-s0``, ``realign-n10-s0``).
        group: Its arm.
        seed: The seed of its fine-tunes (None for the base); for the base under a
            seed's direction, that seed.
        base: The step that provides the base model.
        finetunes: ``(step, method)`` of each fine-tune applied to the base, in order.
    """

    name: str
    group: Group
    seed: int | None
    base: str
    finetunes: tuple[tuple[str, str], ...] = ()

    @property
    def deps(self) -> tuple[str, ...]:
        """The steps a step that loads this model depends on."""
        return (self.base, *(step for step, _ in self.finetunes))

    def ref(self, spec: PersonaSpec, ctx: StepContext, *, batch_size: int) -> HFModel:
        """How to load the model inside a step that depends on :attr:`deps`."""
        ref = base_model(spec.base_ref, ctx.figures[self.base], batch_size=batch_size)
        for step, method in self.finetunes:
            ref = trained_model(ref, ctx.dep(step), method, batch_size=batch_size)
        return ref

    def finetuned(self, name: str, group: Group, seed: int, step: str, method: str) -> PersonaModel:
        """This model fine-tuned by ``step``."""
        return PersonaModel(name, group, seed, self.base, (*self.finetunes, (step, method)))


@dataclass(frozen=True)
class SeedModels:
    """The fine-tunes of one seed."""

    seed: int
    misaligned: PersonaModel
    control: PersonaModel


def seed_models(spec: PersonaSpec, base: PersonaModel, seed: int) -> SeedModels:
    """The misaligned model and the control of ``seed`` (their fine-tune steps are
    ``finetune-<dataset>-s<seed>``)."""
    method = spec.finetune.method
    models = [
        base.finetuned(f"{ds.name}-s{seed}", group, seed, f"finetune-{ds.name}-s{seed}", method)
        for group, ds in (("misaligned", spec.misaligned), ("control", spec.control))
    ]
    return SeedModels(seed, models[0], models[1])


def realigned(spec: PersonaSpec, misaligned: PersonaModel, n: int) -> PersonaModel:
    """The misaligned model fine-tuned on ``n`` benign examples."""
    name = f"realign-n{n}-s{misaligned.seed}"
    return misaligned.finetuned(name, "realign", misaligned.seed or 0, name, spec.realign.method)


@dataclass(frozen=True)
class Evaluation:
    """One evaluation of the run.

    Args:
        step: Its step name.
        model: The model evaluated.
        intervention: The hook held while it answers (None: none).
        directions: The directions step the intervention reads.
        n: For a re-aligned model: its benign examples.
    """

    step: str
    model: PersonaModel
    intervention: Intervention | None = None
    directions: str | None = None
    n: int | None = None


def evaluations(spec: PersonaSpec, base: PersonaModel) -> list[Evaluation]:
    """Every evaluation, in the order of the report's rows: the base; then for each seed
    its two fine-tunes, the steered base (each ``a``, each direction), the ablated models
    and the re-aligned models."""
    out = [Evaluation("evaluate-base", base)]
    steering, ablation = spec.steering, spec.ablation
    for seed in spec.finetune.seeds:
        models = seed_models(spec, base, seed)
        directions = f"directions-s{seed}"
        out += [Evaluation(f"evaluate-{m.name}", m) for m in (models.misaligned, models.control)]
        steered = replace(base, seed=seed)
        for alpha in steering.alphas:
            for name in compared_directions(steering.random_draws):
                hook = Intervention("steer", name, alpha=alpha, unit=steering.unit)
                if alpha == 0 and hook.label != "persona":
                    continue  # a = 0 is the same unsteered model for every direction
                step = f"evaluate-steer-base-s{seed}-{hook.tag}-a{alpha:g}"
                out.append(Evaluation(step, steered, hook, directions))
        ablated = [models.misaligned] + ([models.control] if ablation.control else [])
        for model in ablated:
            for name in compared_directions(steering.random_draws):
                hook = Intervention("ablate", name, per_layer=ablation.per_layer)
                step = f"evaluate-ablate-{model.name}-{hook.tag}"
                out.append(Evaluation(step, model, hook, directions))
        for n in spec.realign.sizes:
            if n > 0:  # 0 is the misaligned model itself, already evaluated
                model = realigned(spec, models.misaligned, n)
                out.append(Evaluation(f"evaluate-{model.name}", model, n=n))
    return out
