"""The organism's recipe: everything that determines the organism, and its cache key.

Plain pydantic, without torch: a spec that names the organism validates and hashes without
loading the trainers (:mod:`darkmirror.models.organism` builds it).
"""

from __future__ import annotations

import hashlib
import json

from pydantic import BaseModel, ConfigDict, Field

from darkmirror.data.world.world import WORLD_VERSION, WorldConfig
from darkmirror.train.config import PretrainConfig, SFTSettings

__all__ = ["BUILD_VERSION", "Architecture", "OrganismRecipe", "PostTraining"]

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


class OrganismRecipe(BaseModel):
    """Everything that determines the organism; its hash is the cache key.

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
