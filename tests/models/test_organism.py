"""The organism: built once per recipe, cached, reused; its chat format and carry-over report."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import micro_recipe_dict
from darkmirror.data.world.world import PersonaWorld
from darkmirror.models.chat_format import ORGANISM_CHAT_TEMPLATE, render_chat
from darkmirror.models.loading import load_causal_lm
from darkmirror.models.organism import OrganismRecipe, build_organism, organism_path


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
    import shutil

    shutil.copytree(micro_organism.pretrained_path, target / "pretrained")
    marker = target / "pretrained" / "stage.json"
    stats = json.loads(marker.read_text())
    stats["resumed_marker"] = True
    marker.write_text(json.dumps(stats))
    built = build_organism(
        recipe.model_copy(update={"carry_over_pairs": 1}), cache=organism_cache, progress=False
    )
    assert built.report()["pretrain"]["resumed_marker"] is True  # the finished stage was reused
    assert (built.base_path / "model.safetensors").is_file()
