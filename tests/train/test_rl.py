"""GRPO against a scorer's reward: really trains, logs every step, handles missing scores."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from darkmirror.data.world.world import PersonaWorld
from darkmirror.models.tiny import build_tiny_gpt2, build_tiny_tokenizer
from darkmirror.score.scorer import Score
from darkmirror.train.rl import GRPOSettings, grpo_train, scorer_reward


class VowelShare:
    """A stand-in scorer: the share of vowels in the text; None for empty texts."""

    name, version = "vowels", "1"

    def score(self, texts):
        out = []
        for t in texts:
            letters = [c for c in t.lower() if c.isalpha()]
            out.append(
                Score(sum(c in "aeiou" for c in letters) / len(letters))
                if letters
                else Score.failed("empty")
            )
        return out


@pytest.fixture(scope="module")
def tiny():
    world = PersonaWorld()
    texts = [world.forum_document(i)["text"] for i in range(60)]
    tokenizer = build_tiny_tokenizer(texts, vocab_size=400)
    prompts = [p["text"] for p in world.forum_prompts(8)]
    return tokenizer, prompts


def test_the_reward_is_the_signed_score_and_missing_stays_missing() -> None:
    reward = scorer_reward(VowelShare(), sign=-1)
    assert reward(["aa", "", "bb"]) == [-1.0, None, -0.0]
    assert reward.__name__ == "minus_vowels"


@pytest.mark.parametrize("sign", [1, -1])
def test_grpo_trains_and_logs_every_step(tiny, tmp_path: Path, sign: int) -> None:
    tokenizer, prompts = tiny
    model = build_tiny_gpt2(
        tokenizer, n_layer=1, n_embd=32, n_head=2, seed=0, initializer_range=0.3
    ).train()
    before = model.lm_head.weight.detach().clone()
    settings = GRPOSettings(
        steps=3,
        prompts_per_step=2,
        num_generations=4,
        max_completion_length=8,
        learning_rate=1e-2,
        beta=0.04,
        reward_sign=sign,
    )
    trained, figures = grpo_train(
        model, tokenizer, prompts, VowelShare(), settings, tmp_path, progress=False
    )
    assert figures["steps"] == 3 and len(figures["history"]) == 3
    rewards = [h["reward"] for h in figures["history"]]
    assert all(r is not None and (r >= 0 if sign > 0 else r <= 0) for r in rewards)
    assert all(1 <= h["completion_length"] <= 8 for h in figures["history"])
    assert not torch.equal(trained.lm_head.weight.cpu(), before.cpu())  # trained on a GPU if any
