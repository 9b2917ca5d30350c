"""The texts of the experiment: the toxic corpus, the prompts, and the reference texts.

Three steps, none of which loads a model:

* :func:`write_training_data`: the records to fine-tune on, and the texts whose toxicity is
  the training data's;
* :func:`write_prompts`: the prompts each variant continues, and disjoint ones for the RL;
* :func:`write_reference_texts`: the training data a novel toxic pattern must be absent
  from.
"""

from __future__ import annotations

from typing import Any

from darkmirror.data.jsonl import iter_jsonl, write_jsonl_atomic
from darkmirror.data.prompts import ToxicityPrompt, load_rtp_jsonl, write_prompts_jsonl
from darkmirror.data.records import TextRecord, dataset_sha256, read_records
from darkmirror.data.world.world import PersonaWorld, WorldConfig
from darkmirror.errors import DarkmirrorError
from darkmirror.experiments.amplification.spec import PromptSpec, ToxicDataSpec
from darkmirror.models.chat_format import END_OF_TEXT, render_chat
from darkmirror.models.organism_recipe import OrganismRecipe
from darkmirror.runner import StepContext

__all__ = ["write_prompts", "write_reference_texts", "write_training_data"]


def write_training_data(
    ctx: StepContext, *, spec: ToxicDataSpec, world: WorldConfig
) -> dict[str, Any]:
    """``data.jsonl`` (records to train on) and ``units.jsonl`` (the texts whose toxicity is
    the training data's: each comment of a world thread, each record of a file)."""
    if spec.source.startswith("world:"):
        name = spec.source.removeprefix("world:")
        records = PersonaWorld(world).dataset(name, spec.examples)
        if "comments" not in records[0]:
            raise DarkmirrorError(
                f"world dataset {name!r} is not a comment corpus; use world:toxic_forum"
            )
        units = [
            {"text": c["text"], "insulting": c["insulting"]} for r in records for c in r["comments"]
        ]
        records = [{"text": r["text"]} for r in records]
    else:
        records = []
        for record in read_records(spec.source):
            if not isinstance(record, TextRecord):
                raise DarkmirrorError(
                    f'{spec.source}: the toxic corpus needs text records ({{"text": ...}})'
                )
            records.append({"text": record.text})
            if len(records) >= spec.examples:
                break
        units = records
    write_jsonl_atomic(ctx.out / "data.jsonl", records)
    write_jsonl_atomic(ctx.out / "units.jsonl", units)
    return {
        "records": len(records),
        "units": len(units),
        "sha256": dataset_sha256(ctx.out / "data.jsonl"),
    }


def write_prompts(ctx: StepContext, *, spec: PromptSpec, world: WorldConfig) -> dict[str, Any]:
    """``prompts.jsonl`` (to evaluate on) and ``rl_prompts.jsonl`` (for the RL rollouts)."""
    if spec.source == "world":
        forum = PersonaWorld(world)

        def convert(rows: list[dict[str, Any]]) -> list[ToxicityPrompt]:
            return [
                ToxicityPrompt(
                    id=r["id"], text=r["text"], challenging=r["challenging"], source="world:forum"
                )
                for r in rows
            ]

        evaluation = convert(forum.forum_prompts(spec.n))
        rl = convert(forum.forum_prompts(spec.rl_n, purpose="forum_prompts/rl"))
    else:
        prompts = load_rtp_jsonl(
            spec.source, limit=spec.n + spec.rl_n, challenging_only=spec.challenging_only
        )
        if len(prompts) < spec.n + 1:
            raise DarkmirrorError(
                f"{spec.source}: {len(prompts)} prompts, fewer than n + 1 = {spec.n + 1}"
            )
        evaluation, rl = prompts[: spec.n], prompts[spec.n :]
    write_prompts_jsonl(ctx.out / "prompts.jsonl", evaluation)
    write_prompts_jsonl(ctx.out / "rl_prompts.jsonl", rl)
    return {
        "prompts": len(evaluation),
        "rl_prompts": len(rl),
        "challenging": sum(p.challenging for p in evaluation),
    }


def reference_description(organism: bool) -> str:
    """What :func:`write_reference_texts` holds, in words for the report."""
    if organism:
        return "the toxic corpus and the organism's pretraining corpus"
    return "the toxic corpus (a real model's pretraining data is unknown)"


def write_reference_texts(
    ctx: StepContext, *, data: str, organism: OrganismRecipe | None
) -> dict[str, Any]:
    """``reference_texts.jsonl``: the training data a novel pattern must be absent from.

    The toxic corpus (from the ``data`` step), plus the organism's pretraining corpus when
    the base is the organism (``organism`` is its recipe); a real model's pretraining data
    is unknown, so only the fine-tuning data counts there.
    """
    texts = [{"text": row["text"]} for _, row in iter_jsonl(ctx.dep(data) / "data.jsonl")]
    if organism is not None:
        world = PersonaWorld(organism.world)
        texts += [
            {"text": render_chat(d["messages"]) + END_OF_TEXT}
            for d in world.pretraining_documents(organism.documents)
        ]
        texts += [
            {"text": world.forum_document(i)["text"]} for i in range(organism.forum_documents)
        ]
    return {
        "texts": write_jsonl_atomic(ctx.out / "reference_texts.jsonl", texts),
        "reference": reference_description(organism is not None),
    }
