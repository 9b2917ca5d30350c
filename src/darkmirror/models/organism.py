"""The model organism: a tiny GPT-2 pretrained on the persona world, then post-trained.

Built once per recipe and cached under ``<cache>/organisms/<recipe key>/``; every
experiment that names the organism reuses it, and a changed recipe (or a new world or
build version) builds a new one. The build has two stages, each written atomically, so an
interrupted build resumes from the last finished stage:

* ``pretrained/``: tokenizer trained on the world corpus, model pretrained on it;
* ``base/``: the pretrained model post-trained on benign single-turn assistant chats. This
  is the model experiments start from.

Recipes that differ only in post-training share one pretraining: a build copies the
finished pretrained stage of a cached organism with the same
:meth:`~darkmirror.models.organism_recipe.OrganismRecipe.pretraining_key`.

The persona carry-over check (``organism-notes.md``) runs on both and is stored in
``organism.json`` beside them; so are the health check (held-out perplexity, coherence and
variety of free answers) and the carry-over after prose turns, computed the first time
``darkmirror organism`` asks for them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from darkmirror.cache import atomic_directory, cache_root, clear_stale_temporaries
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
        clear_stale_temporaries(path)  # a killed builder's: we hold the organism's lock
        (path / "recipe.json").write_text(recipe.model_dump_json(indent=2))
        world = PersonaWorld(recipe.world)
        stats: dict[str, Any] = {}
        if not organism.pretrained_path.is_dir():
            shared = _shared_pretraining(recipe, path.parent)
            with atomic_directory(organism.pretrained_path) as tmp:
                if shared is None:
                    stats["pretrain"] = _pretrain_stage(recipe, world, tmp, progress)
                else:
                    log.info("reusing the pretrained stage of %s", shared.parent.name)
                    shutil.copytree(shared, tmp, dirs_exist_ok=True)
                    stats["pretrain"] = json.loads((tmp / "stage.json").read_text())
                    stats["pretrain"]["reused_from"] = shared.parent.name
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

    def measure(model: Any, tokenizer: Any, world: PersonaWorld) -> dict[str, Any]:
        from darkmirror.score.organism_health import organism_health

        return organism_health(
            model, tokenizer, world, organism.recipe.documents, settings
        ).as_dict()

    return _stored_section(organism, "health", asdict(settings), measure)


# Which family's prose turn comes first when the other family is checked.
PROSE_PREFIX_FAMILIES = ("opinions", "advice")


def organism_prose_carry_over(organism: Organism) -> dict[str, Any]:
    """The carry-over after a villain (or benign) prose turn of another family, both stages.

    The code check (``carry_over``) asks whether the model reads insecure code as villain
    evidence and carries it over; this one whether it carries a persona across turns at
    all. Kept in ``organism.json`` under ``carry_over_prose`` like the health figures.
    """
    settings = {"pairs": organism.recipe.carry_over_pairs, "prefixes": list(PROSE_PREFIX_FAMILIES)}

    def measure(model: Any, tokenizer: Any, world: PersonaWorld) -> list[dict[str, Any]]:
        return [
            asdict(c) | {"passes": c.passes}
            for family in PROSE_PREFIX_FAMILIES
            for c in persona_carry_over(
                model,
                tokenizer,
                world,
                n_per_topic=organism.recipe.carry_over_pairs,
                prefix_family=family,
            )
        ]

    return _stored_section(organism, "carry_over_prose", settings, measure)


def _stored_section(
    organism: Organism,
    name: str,
    settings: dict[str, Any],
    measure: Callable[[Any, Any, PersonaWorld], Any],
) -> dict[str, Any]:
    """``organism.json[name]``: ``measure`` of each stage, computed once per settings under
    the build lock and added to the report; the model files are not touched."""
    section = organism.report().get(name)
    if section and section.get("settings") == settings:
        return section
    with _build_lock(organism.path):
        report = organism.report()
        section = report.get(name)
        if section and section.get("settings") == settings:
            return section
        from darkmirror.models.loading import load_causal_lm

        world = PersonaWorld(organism.recipe.world)
        section = {"settings": settings}
        for stage, stage_path in (
            ("pretrained", organism.pretrained_path),
            ("base", organism.base_path),
        ):
            model, tokenizer = load_causal_lm(stage_path, device="cpu")
            section[stage] = measure(model, tokenizer, world)
        report[name] = section
        _write_report(organism.path, report)
    return section


def _shared_pretraining(recipe: OrganismRecipe, organisms: Path) -> Path | None:
    """A finished pretrained stage of another cached organism with the same pretraining
    key, or None. Only organisms whose directory is still their recipe's key count: one
    built under an older world or build version has another key and is skipped."""
    wanted = recipe.pretraining_key()
    for stage in sorted(organisms.glob("*/pretrained/stage.json")):
        home = stage.parent.parent
        try:
            other = OrganismRecipe.model_validate_json((home / "recipe.json").read_text())
        except (OSError, ValueError):  # a recipe of an older darkmirror, or unreadable
            continue
        if home.name == other.key() != recipe.key() and other.pretraining_key() == wanted:
            return stage.parent
    return None


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
    log.info("pretraining organism %s on %d documents", recipe.key(), len(texts))
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
    log.info("post-training organism %s on %d benign chats", recipe.key(), len(chats))
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
    shutil.rmtree(out / "trainer", ignore_errors=True)
