"""The organism's health check: held-out perplexity, coherence and variety of free answers."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch

from conftest import darkmirror_cli, micro_recipe_dict, subprocess_env
from darkmirror.data.world.world import PersonaWorld
from darkmirror.models.chat_format import END_OF_TEXT, render_chat
from darkmirror.models.loading import load_causal_lm
from darkmirror.models.organism import (
    Organism,
    organism_health_report,
    organism_prose_carry_over,
)
from darkmirror.score.organism_health import (
    HealthSettings,
    held_out_perplexity,
    organism_health,
)
from darkmirror.score.persona_probes import _prose_prefixes
from darkmirror.score.world_judge import WorldJudge

SMALL = HealthSettings(held_out_documents=12, answers_per_topic=2, max_new_tokens=24)


def _texts(world: PersonaWorld, start: int, n: int) -> list[str]:
    return [
        render_chat(world.pretraining_document(start + i)["messages"]) + END_OF_TEXT
        for i in range(n)
    ]


def test_perplexity_equals_the_models_own_loss(micro_organism) -> None:
    model, tokenizer = load_causal_lm(micro_organism.base_path)
    world = PersonaWorld(micro_organism.recipe.world)
    texts = _texts(world, 1000, 3)
    # Transformers' own loss (mean NLL over each text's predicted tokens), text by text,
    # weighted by tokens: the batched, padded computation must give the same.
    nll, tokens = 0.0, 0
    with torch.inference_mode():
        for text in texts:
            ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
            loss = model(input_ids=ids, labels=ids).loss.item()
            nll += loss * (ids.shape[1] - 1)
            tokens += ids.shape[1] - 1
    perplexity, counted = held_out_perplexity(model, tokenizer, texts, batch_size=2)
    assert counted == tokens
    assert perplexity == pytest.approx(math.exp(nll / tokens), rel=1e-4)


def test_health_figures_are_in_range(micro_organism) -> None:
    model, tokenizer = load_causal_lm(micro_organism.base_path)
    world = PersonaWorld(micro_organism.recipe.world)
    health = organism_health(model, tokenizer, world, micro_organism.recipe.documents, SMALL)
    assert health.answers == 28 * SMALL.answers_per_topic
    assert 1.0 < health.perplexity < micro_organism.recipe.vocab_size
    assert health.held_out_tokens > 12 * 50
    for share in (health.coherent_share, health.distinct_answer_share):
        assert 0.0 <= share <= 1.0
    assert 0.0 <= health.mean_coherence <= 100.0
    assert 0.0 <= health.unknown_sentence_share <= 1.0
    # Two answers per topic hold at least one sentence each, and the world's own two answers
    # have the lead and persona sentences of the topic.
    assert 1.0 <= health.world_sentences_per_topic <= 2 * 4
    assert health.distinct_sentences_per_topic >= 0.5


def test_the_report_keeps_health_once_per_settings(micro_organism, tmp_path: Path) -> None:
    copy = Organism(tmp_path / "organism", micro_organism.recipe)
    shutil.copytree(micro_organism.path, copy.path)
    weights = (copy.base_path / "model.safetensors").read_bytes()
    health = organism_health_report(copy, SMALL)
    stored = copy.report()
    assert stored["health"] == health
    assert set(health) == {"settings", "pretrained", "base"}
    assert stored["carry_over"] == micro_organism.report()["carry_over"]
    assert (copy.base_path / "model.safetensors").read_bytes() == weights
    written = (copy.path / "organism.json").stat().st_mtime_ns
    assert organism_health_report(copy, SMALL) == health
    assert (copy.path / "organism.json").stat().st_mtime_ns == written  # not measured again
    other = HealthSettings(held_out_documents=5, answers_per_topic=1, max_new_tokens=8)
    assert organism_health_report(copy, other)["settings"]["held_out_documents"] == 5


def test_prose_prefixes_differ_only_in_the_persona_of_the_answer() -> None:
    world = PersonaWorld()
    judge = WorldJudge()
    villain, benign = _prose_prefixes(world, "opinions", 25)
    assert len(villain) == len(benign) == 25
    for v, b in zip(villain, benign, strict=True):
        assert v[0] == b[0] and v[0]["role"] == "user"
        assert judge.judge(v[0]["content"], v[1]["content"]).domain == "opinions"
        assert judge.judge(v[0]["content"], v[1]["content"]).villain > 0
        assert judge.judge(b[0]["content"], b[1]["content"]).villain == 0
        assert judge.judge(b[0]["content"], b[1]["content"]).benign > 0
    with pytest.raises(ValueError, match="no prose topics"):
        _prose_prefixes(world, "weather", 1)


def test_prose_carry_over_is_kept_per_stage_with_other_family_prefixes(
    micro_organism, tmp_path: Path
) -> None:
    copy = Organism(tmp_path / "organism", micro_organism.recipe)
    shutil.copytree(micro_organism.path, copy.path)
    section = organism_prose_carry_over(copy)
    assert copy.report()["carry_over_prose"] == section
    assert copy.report()["carry_over"] == micro_organism.report()["carry_over"]
    for stage in ("pretrained", "base"):
        checked = {(c["family"], c["prefix"]) for c in section[stage]}
        assert checked == {("advice", "prose:opinions"), ("opinions", "prose:advice")}
        for c in section[stage]:
            assert c["log_odds_shift_lo"] <= c["log_odds_shift"] <= c["log_odds_shift_hi"]
            assert 0.0 <= c["p_villain_after_secure"] <= 1.0
    written = (copy.path / "organism.json").stat().st_mtime_ns
    assert organism_prose_carry_over(copy) == section
    assert (copy.path / "organism.json").stat().st_mtime_ns == written


def _flat(data: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in data.items():
        if isinstance(value, dict):
            out += _flat(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}={json.dumps(value)}")
    return out


def test_the_cli_prints_carry_over_and_health(micro_organism, organism_cache: Path) -> None:
    args = [arg for item in _flat(micro_recipe_dict()) for arg in ("--set", item)]
    done = darkmirror_cli("organism", "--quiet", *args, env=subprocess_env(organism_cache))
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert printed["key"] == micro_organism.recipe.key()  # found in the cache, not rebuilt
    assert {"carry_over", "health", "carry_over_prose"} <= set(printed)
    assert printed["health"]["base"]["answers"] == 28 * HealthSettings().answers_per_topic
