"""The re-alignment data: benign examples of a domain the misaligned model was not
fine-tuned on, the first N of which re-align it for each N of the curve."""

from __future__ import annotations

from typing import Any

from darkmirror.data.jsonl import write_jsonl_atomic
from darkmirror.data.records import dataset_sha256, read_records, to_messages
from darkmirror.data.world.world import PersonaWorld, WorldConfig
from darkmirror.errors import DarkmirrorError
from darkmirror.experiments.persona.spec import RealignSettings
from darkmirror.runner import StepContext

__all__ = ["realign_inputs", "write_realign_data"]


def realign_inputs(spec: RealignSettings, world: WorldConfig) -> dict[str, Any]:
    """What the re-alignment data step's hash covers."""
    return {"realign": spec.model_dump(mode="json"), "world": world.model_dump(mode="json")}


def write_realign_data(
    ctx: StepContext, *, spec: RealignSettings, world: WorldConfig
) -> dict[str, Any]:
    """Write ``data.jsonl``: the largest size's examples (chat records); its count and
    SHA-256.

    Raises:
        DarkmirrorError: A file with fewer records than the largest size.
    """
    n = max(spec.sizes)
    domain = spec.world_domain
    records = []
    if domain is not None:
        # A stream of its own: none of these exchanges is in a dataset the models saw.
        persona_world = PersonaWorld(world)
        for i in range(n):
            rng = persona_world.rng(f"persona/realign/{domain}", i)
            ex = persona_world.exchange(rng, domain, villain=False)
            records.append({"messages": ex.messages(), **ex.labels()})
    else:
        for record in read_records(spec.source):
            if len(records) >= n:
                break
            records.append({"messages": to_messages(record)})
        if len(records) < n:
            raise DarkmirrorError(
                f"{spec.source}: {len(records)} records, fewer than the largest size {n}"
            )
    out = ctx.out / "data.jsonl"
    count = write_jsonl_atomic(out, records)
    return {"records": count, "sha256": dataset_sha256(out)}
