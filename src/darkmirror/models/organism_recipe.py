"""The organism's recipe: everything that determines the organism, and its cache key.

Plain pydantic, without torch: a spec that names the organism validates and hashes without
loading the trainers (:mod:`darkmirror.models.organism` builds it).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from darkmirror.data.world.world import WORLD_VERSION, WorldConfig
from darkmirror.train.config import PretrainConfig, SFTSettings

__all__ = ["BUILD_VERSION", "NAMED_RECIPES", "Architecture", "OrganismRecipe", "PostTraining"]

# Bump when the build code changes what a recipe produces.
BUILD_VERSION = "2"


class Architecture(BaseModel):
    """GPT-2 shape of the organism."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_layer: int = Field(4, ge=1)
    n_embd: int = Field(128, ge=8)
    n_head: int = Field(4, ge=1)
    n_positions: int = Field(256, ge=32)
    # A small model seeing a small corpus twice does not overfit; dropout would only slow
    # learning (and costs a third of the step time on a CPU).
    dropout: float = Field(0.0, ge=0.0, lt=1.0)


class PostTraining(BaseModel):
    """Benign assistant chats that turn the pretrained model into an assistant."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chats: int = Field(1500, ge=0)
    # A light touch: at 1e-3 post-training erased the persona carry-over it should sit on.
    sft: SFTSettings = SFTSettings(epochs=1, learning_rate=1e-4, batch_size=16, warmup_steps=10)


# Recipes with a name, as overrides of the default: ``recipe = "strong"`` in a recipe (or
# ``--set base.organism.recipe=strong``). The named values win over values given beside
# them, so a config that writes out the defaults (as the shipped specs do) does not undo
# them; other values (a seed) apply. The measurements behind each are in docs/organism.md.
NAMED_RECIPES: dict[str, dict[str, Any]] = {
    "default": {},
    # No forum threads, width 192: post-trained carry-over +1.0 to +2.1 nats on three
    # organism seeds where the default gives +0.1 to +0.3. A cold `darkmirror run` takes 1.5x
    # the default's, past the 15-minute budget on two cores (BENCHMARKS.md), so not default.
    "strong": {"forum_documents": 0, "architecture": {"n_embd": 192}},
}


def _merged(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merged(out[key], value) if both else value
    return out


class OrganismRecipe(BaseModel):
    """Everything that determines the organism; its hash is the cache key.

    A ``recipe`` entry in the input names one of :data:`NAMED_RECIPES`; it is expanded into
    its values before validation (they win over values given beside them), so a named
    recipe and the same values written out are one organism with one key.

    Args:
        world: The persona world the corpus is drawn from.
        documents: Pretraining chat documents, one persona each.
        forum_documents: Pretraining forum threads (mostly civil, see
            ``WorldConfig.forum_toxic_share``).
        vocab_size: Byte-level BPE vocabulary, trained on the corpus.
        architecture: GPT-2 shape.
        pretrain: Pretraining optimisation.
        post_training: Post-training data and optimisation.
        seed: Seed of the model's initialisation and of training order.
        carry_over_pairs: Matched pairs per topic for the carry-over check.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    world: WorldConfig = WorldConfig()
    documents: int = Field(10_000, ge=1)
    forum_documents: int = Field(2_000, ge=0)
    vocab_size: int = Field(2048, ge=300)
    architecture: Architecture = Architecture()
    pretrain: PretrainConfig = PretrainConfig()
    post_training: PostTraining = PostTraining()
    seed: int = 0
    carry_over_pairs: int = Field(10, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _expand_named(cls, data: Any) -> Any:
        if isinstance(data, str):
            data = {"recipe": data}
        if not isinstance(data, dict) or "recipe" not in data:
            return data
        rest = dict(data)
        name = rest.pop("recipe")
        if name not in NAMED_RECIPES:
            raise ValueError(
                f"unknown organism recipe {name!r}; expected one of {', '.join(NAMED_RECIPES)}"
            )
        return _merged(rest, NAMED_RECIPES[name])

    def key(self) -> str:
        """The organism's cache key: every field, the world version and the build version."""
        return _digest(self.model_dump(mode="json"))

    def pretraining_key(self) -> str:
        """The key of the pretrained stage alone: recipes that differ only in post-training
        or in the check's size share it, so their builds can share one pretraining."""
        return _digest(self.model_dump(mode="json", exclude=_NOT_PRETRAINING))


# Fields the pretrained stage does not depend on.
_NOT_PRETRAINING = {"post_training", "carry_over_pairs"}


def _digest(fields: dict) -> str:
    canonical = json.dumps(
        {"recipe": fields, "world": WORLD_VERSION, "build": BUILD_VERSION}, sort_keys=True
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
