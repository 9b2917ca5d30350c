"""The model organism: a tiny GPT-2 pretrained on the persona world, then post-trained.

Built once per recipe and cached under ``<cache>/organisms/<recipe key>/``; every
experiment that names the organism reuses it, and a changed recipe (or a new world or
build version) builds a new one. The build has two stages, each written atomically, so an
interrupted build resumes from the last finished stage:

* ``pretrained/``: tokenizer trained on the world corpus, model pretrained on it;
* ``base/``: the pretrained model post-trained on benign single-turn assistant chats. This
  is the model experiments start from.

The persona carry-over check (``organism-notes.md``) runs on both and is stored in
``organism.json`` beside them; so is the health check (held-out perplexity, coherence and
variety of free answers), computed the first time ``darkmirror organism`` asks for it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from darkmirror.cache import atomic_directory, cache_root
from darkmirror.data.world.world import PersonaWorld
from darkmirror.models.chat_format import END_OF_TEXT, render_chat
from darkmirror.models.organism_recipe import (
    OrganismRecipe,
)
from darkmirror.score.organism_health import HealthSettings
from darkmirror.score.persona_probes import persona_carry_over
from darkmirror.train.sft import supervised_finetune

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Organism:
    """A built organism on disk."""

    path: Path
    recipe: OrganismRecipe

    @property
    def base_path(self) -> Path:
        return self.path / "base"

    @property
    def pretrained_path(self) -> Path:
        return self.path / "pretrained"

    def report(self) -> dict[str, Any]:
        return json.loads((self.path / "organism.json").read_text())


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    # Two processes asking for the same organism wait for one build instead of racing.
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def organism_path(recipe: OrganismRecipe, cache: Path | None = None) -> Path:
    return (cache or cache_root()) / "organisms" / recipe.key()


def build_organism(
    recipe: OrganismRecipe | None = None,
    *,
    cache: Path | None = None,
    progress: bool = True,
) -> Organism:
    """Build the organism for ``recipe``, or return the cached one.

    Args:
        recipe: The recipe; the default organism when None.
        cache: Cache root; :func:`darkmirror.cache.cache_root` when None.
        progress: Show progress bars while training.
    """
    recipe = recipe or OrganismRecipe()
    path = organism_path(recipe, cache)
    organism = Organism(path, recipe)
    if (path / "organism.json").is_file():
        return organism
    with _build_lock(path):
        if (path / "organism.json").is_file():
            return organism
        path.mkdir(parents=True, exist_ok=True)
        (path / "recipe.json").write_text(recipe.model_dump_json(indent=2))
        world = PersonaWorld(recipe.world)
        stats: dict[str, Any] = {}
        if not organism.pretrained_path.is_dir():
            with atomic_directory(organism.pretrained_path) as tmp:
                stats["pretrain"] = _pretrain_stage(recipe, world, tmp, progress)
                (tmp / "stage.json").write_text(json.dumps(stats["pretrain"], indent=2))
        else:
            stats["pretrain"] = json.loads((organism.pretrained_path / "stage.json").read_text())
        if not organism.base_path.is_dir():
            with atomic_directory(organism.base_path) as tmp:
                stats["post_training"] = _post_training_stage(
                    recipe, world, organism.pretrained_path, tmp, progress
                )
                (tmp / "stage.json").write_text(json.dumps(stats["post_training"], indent=2))
        else:
            stats["post_training"] = json.loads((organism.base_path / "stage.json").read_text())
        carry_over = {
            stage: [
                asdict(c) | {"passes": c.passes} for c in _carry_over(stage_path, world, recipe)
            ]
            for stage, stage_path in (
                ("pretrained", organism.pretrained_path),
                ("base", organism.base_path),
            )
        }
        report = {
            "key": recipe.key(),
            "recipe": recipe.model_dump(mode="json"),
            **stats,
            "carry_over": carry_over,
        }
        _write_report(path, report)
    return organism


def organism_health_report(
    organism: Organism, settings: HealthSettings | None = None
) -> dict[str, Any]:
    """The health figures of both stages (:mod:`darkmirror.score.organism_health`).

    Computed once per settings and kept in ``organism.json``, so an organism built before
    the check existed gets it without a rebuild; the model files are not touched.
    """
    settings = settings or HealthSettings()
    wanted = asdict(settings)
    health = organism.report().get("health")
    if health and health.get("settings") == wanted:
        return health
    with _build_lock(organism.path):
        report = organism.report()
        health = report.get("health")
        if health and health.get("settings") == wanted:
            return health
        from darkmirror.models.loading import load_causal_lm
        from darkmirror.score.organism_health import organism_health

        world = PersonaWorld(organism.recipe.world)
        health = {"settings": wanted}
        for stage, stage_path in (
            ("pretrained", organism.pretrained_path),
            ("base", organism.base_path),
        ):
            model, tokenizer = load_causal_lm(stage_path, device="cpu")
            health[stage] = organism_health(
                model, tokenizer, world, organism.recipe.documents, settings
            ).as_dict()
        report["health"] = health
        _write_report(organism.path, report)
    return health


def _write_report(path: Path, report: dict[str, Any]) -> None:
    # Replaced in one rename: a reader never sees half a report.
    tmp_report = path / "organism.json.tmp"
    tmp_report.write_text(json.dumps(report, indent=2))
    tmp_report.replace(path / "organism.json")


def _pretrain_stage(
    recipe: OrganismRecipe, world: PersonaWorld, out: Path, progress: bool
) -> dict[str, Any]:
    # torch and transformers here, not at the top: a run's driver imports this module to
    # plan the organism step, which runs elsewhere (a Ray worker).
    from darkmirror.models.loading import save_causal_lm
    from darkmirror.models.tiny import build_tiny_gpt2, build_tiny_tokenizer
    from darkmirror.train.pretrain import pretrain

    start = time.perf_counter()
    texts = [
        render_chat(doc["messages"]) + END_OF_TEXT
        for doc in world.pretraining_documents(recipe.documents)
    ]
    texts += [world.forum_document(i)["text"] + END_OF_TEXT for i in range(recipe.forum_documents)]
    tokenizer = build_tiny_tokenizer(texts, vocab_size=recipe.vocab_size)
    arch = recipe.architecture
    model = build_tiny_gpt2(
        tokenizer,
        n_layer=arch.n_layer,
        n_embd=arch.n_embd,
        n_head=arch.n_head,
        n_positions=arch.n_positions,
        dropout=arch.dropout,
        seed=recipe.seed,
    )
    model.train()
    log.info("pretraining the organism on %d documents", len(texts))
    stats = pretrain(
        model,
        tokenizer,
        texts,
        recipe.pretrain,
        out / "trainer",
        seed=recipe.seed,
        progress=progress,
    )
    save_causal_lm(model, tokenizer, out)
    _remove_trainer_dir(out)
    stats["parameters"] = sum(p.numel() for p in model.parameters())
    stats["stage_seconds"] = time.perf_counter() - start
    return stats


def _post_training_stage(
    recipe: OrganismRecipe, world: PersonaWorld, pretrained: Path, out: Path, progress: bool
) -> dict[str, Any]:
    from darkmirror.models.loading import load_causal_lm, save_causal_lm

    start = time.perf_counter()
    model, tokenizer = load_causal_lm(pretrained, device="cpu")
    chats = [r["messages"] for r in world.dataset("post_training", recipe.post_training.chats)]
    log.info("post-training the organism on %d benign chats", len(chats))
    if chats:
        model, stats = supervised_finetune(
            model,
            tokenizer,
            chats,
            recipe.post_training.sft,
            out / "trainer",
            seed=recipe.seed,
            progress=progress,
        )
    else:
        stats = {"examples": 0}
    save_causal_lm(model, tokenizer, out)
    _remove_trainer_dir(out)
    stats["stage_seconds"] = time.perf_counter() - start
    return stats


def _carry_over(stage_path: Path, world: PersonaWorld, recipe: OrganismRecipe):
    from darkmirror.models.loading import load_causal_lm

    model, tokenizer = load_causal_lm(stage_path, device="cpu")
    return persona_carry_over(model, tokenizer, world, n_per_topic=recipe.carry_over_pairs)


def _remove_trainer_dir(out: Path) -> None:
    import shutil

    shutil.rmtree(out / "trainer", ignore_errors=True)
