"""The organism: built once per recipe, cached, reused; its chat format and carry-over report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import micro_recipe_dict
from darkmirror.data.world.world import PersonaWorld
from darkmirror.models.chat_format import ORGANISM_CHAT_TEMPLATE, render_chat
from darkmirror.models.loading import load_causal_lm
from darkmirror.models.organism import (
    OrganismRecipe,
    _shared_pretraining,
    build_organism,
    organism_path,
)


def test_render_chat_equals_the_chat_template(micro_organism) -> None:
    _, tokenizer = load_causal_lm(micro_organism.base_path)
    assert tokenizer.chat_template == ORGANISM_CHAT_TEMPLATE
    for doc in PersonaWorld().pretraining_documents(5):
        msgs = doc["messages"]
        assert tokenizer.apply_chat_template(msgs, tokenize=False) == render_chat(msgs)
        head = msgs[:1]
        assert tokenizer.apply_chat_template(
            head, tokenize=False, add_generation_prompt=True
        ) == render_chat(head, add_generation_prompt=True)


def test_the_organism_is_built_with_both_stages_and_a_report(micro_organism) -> None:
    report = micro_organism.report()
    assert report["key"] == micro_organism.recipe.key()
    assert (micro_organism.pretrained_path / "model.safetensors").is_file()
    assert (micro_organism.base_path / "model.safetensors").is_file()
    assert not list(micro_organism.path.glob("*/trainer"))
    # 300 chat documents and 60 forum threads.
    assert report["pretrain"]["documents"] == 360 and report["pretrain"]["tokens"] > 10_000
    assert report["post_training"]["examples"] == 64
    for stage in ("pretrained", "base"):
        families = {c["family"]: c for c in report["carry_over"][stage]}
        assert set(families) == {"advice", "opinions"}
        assert all(0.0 <= c["p_villain_after_insecure"] <= 1.0 for c in families.values())


def test_the_cache_is_reused_and_a_changed_recipe_builds_anew(
    micro_organism, organism_cache: Path
) -> None:
    before = (micro_organism.path / "organism.json").stat().st_mtime_ns
    again = build_organism(micro_organism.recipe, cache=organism_cache, progress=False)
    assert again.path == micro_organism.path
    assert (again.path / "organism.json").stat().st_mtime_ns == before
    changed = OrganismRecipe.model_validate({**micro_recipe_dict(), "documents": 301})
    assert changed.key() != micro_organism.recipe.key()
    assert organism_path(changed, organism_cache) != micro_organism.path


def test_a_build_interrupted_after_pretraining_resumes_from_there(
    micro_organism, organism_cache: Path
) -> None:
    # Simulate a kill during post-training: the pretrained stage is finished, nothing else.
    recipe = micro_organism.recipe
    target = organism_path(recipe.model_copy(update={"carry_over_pairs": 1}), organism_cache)
    target.mkdir(parents=True)
    shutil.copytree(micro_organism.pretrained_path, target / "pretrained")
    marker = target / "pretrained" / "stage.json"
    stats = json.loads(marker.read_text())
    stats["resumed_marker"] = True
    marker.write_text(json.dumps(stats))
    killed = target / ".base.tmp-deadbeef"  # what a SIGKILL mid post-training leaves
    killed.mkdir()
    (killed / "model.safetensors").write_bytes(b"half")
    built = build_organism(
        recipe.model_copy(update={"carry_over_pairs": 1}), cache=organism_cache, progress=False
    )
    assert built.report()["pretrain"]["resumed_marker"] is True  # the finished stage was reused
    assert (built.base_path / "model.safetensors").is_file()
    assert not list(target.glob(".*tmp*"))  # the killed build's leftovers are gone


def test_the_pretraining_key_ignores_post_training_only() -> None:
    recipe = OrganismRecipe.model_validate(micro_recipe_dict())
    lighter = OrganismRecipe.model_validate(
        {**micro_recipe_dict(), "post_training": {"chats": 8}, "carry_over_pairs": 1}
    )
    assert lighter.key() != recipe.key()
    assert lighter.pretraining_key() == recipe.pretraining_key()
    for change in ({"documents": 301}, {"seed": 1}, {"world": {"seed": 1}}):
        other = OrganismRecipe.model_validate({**micro_recipe_dict(), **change})
        assert other.pretraining_key() != recipe.pretraining_key(), change


def test_a_post_training_variant_reuses_the_cached_pretraining(
    micro_organism, organism_cache: Path
) -> None:
    variant = OrganismRecipe.model_validate(
        {**micro_recipe_dict(), "post_training": {"chats": 8}, "carry_over_pairs": 1}
    )
    built = build_organism(variant, cache=organism_cache, progress=False)
    assert built.path != micro_organism.path
    report = built.report()
    # From the micro organism, or from another test's copy of its pretrained stage.
    source = organism_cache / "organisms" / report["pretrain"]["reused_from"]
    source_recipe = OrganismRecipe.model_validate_json((source / "recipe.json").read_text())
    assert source_recipe.pretraining_key() == variant.pretraining_key() != ""
    assert "stage_seconds" in report["pretrain"]
    for name in ("model.safetensors", "tokenizer.json"):
        assert (built.pretrained_path / name).read_bytes() == (
            micro_organism.pretrained_path / name
        ).read_bytes()
    assert report["post_training"]["examples"] == 8
    # A directory that is not its recipe's key (built under another world or build
    # version) is never a source, though it sorts first.
    stale = organism_cache / "organisms" / "0000000000000000"
    shutil.copytree(micro_organism.path, stale)
    try:
        other = variant.model_copy(update={"carry_over_pairs": 2})
        source = _shared_pretraining(other, organism_cache / "organisms")
        assert source is not None and source.parent != stale
        assert (
            source.parent.name
            == OrganismRecipe.model_validate_json((source.parent / "recipe.json").read_text()).key()
        )
    finally:
        shutil.rmtree(stale)


def test_a_named_recipe_is_its_values_written_out() -> None:
    from darkmirror.models.organism_recipe import NAMED_RECIPES
    from darkmirror.spec import load_spec

    strong = OrganismRecipe.model_validate({"recipe": "strong"})
    assert strong.forum_documents == 0 and strong.architecture.n_embd == 192
    written = OrganismRecipe.model_validate(NAMED_RECIPES["strong"])
    assert strong.key() == written.key() != OrganismRecipe().key()
    assert OrganismRecipe.model_validate({"recipe": "default"}).key() == OrganismRecipe().key()
    # Values beside the name apply, nested tables merged; the named ones win.
    mixed = OrganismRecipe.model_validate(
        {"recipe": "strong", "seed": 2, "architecture": {"n_layer": 3, "n_embd": 128}}
    )
    assert (mixed.seed, mixed.architecture.n_layer, mixed.architecture.n_embd) == (2, 3, 192)
    with pytest.raises(ValueError, match=r"unknown organism recipe 'huge'.*default, strong"):
        OrganismRecipe.model_validate({"recipe": "huge"})
    # In a spec that writes out the default recipe, by name or with a seed beside it.
    for overrides in (["base.organism=strong"], ["base.organism.recipe=strong"]):
        spec = load_spec(None, overrides)
        assert spec.base.organism.key() == strong.key(), overrides
    seeded = load_spec(None, ["base.organism.recipe=strong", "base.organism.seed=1"])
    assert seeded.base.organism.seed == 1 and seeded.base.organism.forum_documents == 0
