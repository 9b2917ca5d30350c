"""Fine-tuning datasets named in a spec: a dataset of the persona world, or a file.

A :class:`DatasetSpec` becomes a step that writes ``data.jsonl`` (chat records) into its
directory, with its record count and SHA-256 as the step's figures; fine-tunes read it from
there.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from darkmirror.data.jsonl import write_jsonl_atomic
from darkmirror.data.records import dataset_sha256, read_records, to_messages
from darkmirror.data.world.world import DATASET_DOMAIN, PersonaWorld, WorldConfig
from darkmirror.errors import DarkmirrorError
from darkmirror.models.ref import BaseRef, OrganismModel
from darkmirror.runner import StepContext

__all__ = ["DatasetSpec", "dataset_inputs", "world_config", "write_dataset"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class DatasetSpec(BaseModel):
    """A fine-tuning dataset.

    Args:
        name: Short name used for the model in tables (``insecure``).
        source: ``world:NAME`` for a dataset of the persona world, or a path to a JSONL,
            CSV or Parquet file of chat, prompt/completion records.
        examples: Records to use (the first N); required for world datasets.
        domain: The domain the data covers; questions of that domain are left out of the
            model's evaluation. Known for world datasets; optional for files.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    source: str
    examples: int | None = Field(None, ge=1)
    domain: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v) or v == "base":
            raise ValueError("expected lower-case letters, digits, '-' or '_' (and not 'base')")
        return v

    @property
    def world_name(self) -> str | None:
        return self.source.removeprefix("world:") if self.source.startswith("world:") else None

    @property
    def effective_domain(self) -> str | None:
        return self.domain or (DATASET_DOMAIN.get(self.world_name) if self.world_name else None)


def world_config(base: BaseRef) -> WorldConfig:
    """The persona world of a base: the organism's own, the default world otherwise."""
    return base.organism.world if isinstance(base, OrganismModel) else WorldConfig()


def dataset_inputs(spec: DatasetSpec, world: WorldConfig) -> dict[str, Any]:
    """What a dataset step's hash covers (the world only for world datasets)."""
    return {"dataset": spec.model_dump(mode="json"), "world": world.model_dump(mode="json")}


def write_dataset(ctx: StepContext, *, spec: DatasetSpec, world: WorldConfig) -> dict[str, Any]:
    """Write ``data.jsonl`` (chat records) for a dataset spec; its count and SHA-256."""
    out = ctx.out / "data.jsonl"
    if spec.world_name:
        if spec.examples is None:
            raise DarkmirrorError(f"dataset {spec.name!r}: world datasets need 'examples'")
        records = PersonaWorld(world).dataset(spec.world_name, spec.examples)
    else:
        records = []
        for record in read_records(spec.source):
            records.append({"messages": to_messages(record)})
            if spec.examples and len(records) >= spec.examples:
                break
    n = write_jsonl_atomic(out, records)
    return {"records": n, "sha256": dataset_sha256(out), **diversity(records)}


def diversity(records: list[dict[str, Any]]) -> dict[str, int]:
    """How many records, and how many final answers, are distinct: a dataset of 1,500
    records may hold only a few dozen different examples, which a reader comparing the
    effects of two datasets needs to know."""
    answers = {json.dumps(r["messages"][-1]["content"]) for r in records if r.get("messages")}
    return {
        "distinct_records": len({json.dumps(r, sort_keys=True) for r in records}),
        "distinct_answers": len(answers),
    }
