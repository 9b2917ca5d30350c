"""The ground truth: a linear probe of the persona labels of pretraining documents.

The world labels every pretraining document villain or benign; a logistic probe per layer
of the base's mean activation over a document's assistant turns, and the mean difference
of the two classes, are the directions the found ones are compared with. The probe is
scored on documents neither it nor the model saw.
"""

from __future__ import annotations

from typing import Any

from darkmirror.data.measurements import write_measurements
from darkmirror.data.world.world import PersonaWorld
from darkmirror.experiments.datasets import world_config
from darkmirror.experiments.persona.models import PersonaModel
from darkmirror.experiments.persona.names import TRUTH
from darkmirror.experiments.persona.records import ProbeAccuracy
from darkmirror.experiments.persona.spec import PersonaSpec
from darkmirror.persona.activations import document_spans, mean_activations
from darkmirror.persona.probe import persona_documents, train_persona_probe
from darkmirror.runner import StepContext

__all__ = ["probe_inputs", "probe_step"]


def probe_inputs(spec: PersonaSpec) -> dict[str, Any]:
    """What the probe step's hash covers besides the base."""
    return {
        "probe": spec.probe.model_dump(mode="json"),
        "offset": spec.probe_offset(),
        "world": world_config(spec.base_ref).model_dump(mode="json"),
    }


def probe_step(ctx: StepContext, *, spec: PersonaSpec, base: PersonaModel) -> dict[str, Any]:
    """Train the probe on the base; write ``probe`` and ``persona_mean_difference``
    (safetensors + JSON) and its accuracy per layer (``measurements.jsonl``)."""
    settings, offset = spec.probe, spec.probe_offset()
    world = PersonaWorld(world_config(spec.base_ref))
    model, tokenizer = base.ref(spec, ctx, batch_size=settings.batch_size).load()
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
    probe.direction().save(ctx.out / TRUTH[0])
    probe.label_direction().save(ctx.out / TRUTH[1])
    accuracy = [
        ProbeAccuracy(
            model=base.name,
            group=base.group,
            layer=i,
            test_accuracy=acc,
            train_accuracy=probe.train_accuracy[i],
            train_documents=probe.train_documents,
        )
        for i, acc in enumerate(probe.test_accuracy)
    ]
    write_measurements(ctx.out / "measurements.jsonl", accuracy)
    return {
        "train_documents": probe.train_documents,
        "test_documents": len(parts["test"][1]),
        "test_accuracy": probe.test_accuracy,
        "train_accuracy": probe.train_accuracy,
    }
