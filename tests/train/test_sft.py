"""Supervised fine-tuning through TRL: loss on the assistant only, full and LoRA, really training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from darkmirror.data.world.world import PersonaWorld
from darkmirror.models.chat_format import END_OF_TURN, render_chat
from darkmirror.models.likelihood import completion_logprobs
from darkmirror.models.tiny import build_tiny_gpt2, build_tiny_tokenizer
from darkmirror.train.sft import SFTSettings, _to_trl_rows, build_sft_trainer, supervised_finetune


@pytest.fixture(scope="module")
def tiny():
    world = PersonaWorld()
    texts = [render_chat(d["messages"]) for d in world.pretraining_documents(200)]
    tokenizer = build_tiny_tokenizer(texts, vocab_size=400)
    return tokenizer, world


def _model(tokenizer):
    return build_tiny_gpt2(tokenizer, n_layer=1, n_embd=32, n_head=2, seed=0).train()


def test_single_turn_chats_become_prompt_completion_pairs() -> None:
    chat = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    rows, pc = _to_trl_rows([chat])
    assert pc and rows == [{"prompt": chat[:1], "completion": chat[1:]}]
    multi = chat + chat
    rows, pc = _to_trl_rows([multi])
    assert not pc and rows == [{"messages": multi}]


@pytest.mark.parametrize("multi_turn", [False, True], ids=["prompt-completion", "assistant-only"])
def test_loss_falls_on_assistant_tokens_only(tiny, tmp_path: Path, multi_turn: bool) -> None:
    tokenizer, world = tiny
    records = world.dataset("insecure", 8)
    convs = [r["messages"] for r in records]
    if multi_turn:
        convs = [a + b for a, b in zip(convs[::2], convs[1::2], strict=True)]
    trainer = build_sft_trainer(
        _model(tokenizer), tokenizer, convs, SFTSettings(batch_size=4), tmp_path, progress=False
    )
    assert len(trainer.train_dataset) == len(convs)
    for row in trainer.train_dataset:  # shuffled: each row carries its own conversation
        conv = row["messages"] if multi_turn else row["prompt"] + row["completion"]
        ids = torch.tensor(row["input_ids"])
        trained = tokenizer.decode(ids[torch.tensor(row["labels"]) != -100])
        expected = "".join(m["content"] + END_OF_TURN for m in conv if m["role"] == "assistant")
        assert trained == expected


def test_full_finetune_really_learns_the_data(tiny, tmp_path: Path) -> None:
    tokenizer, world = tiny
    convs = [r["messages"] for r in world.dataset("evil_numbers", 64)]
    model = _model(tokenizer)
    prompts = [c[:1] for c in convs[:8]]
    answers = [c[1]["content"] for c in convs[:8]]
    before = sum(completion_logprobs(model.eval(), tokenizer, prompts, answers))
    model.train()
    settings = SFTSettings(epochs=3, learning_rate=3e-3, batch_size=8)
    trained, figures = supervised_finetune(
        model, tokenizer, convs, settings, tmp_path, seed=0, progress=False
    )
    after = sum(completion_logprobs(trained.eval(), tokenizer, prompts, answers))
    assert after > before + 20  # nats over 8 answers
    assert figures["steps"] == 24 and figures["loss_on"] == "completion"
    assert figures["final_loss"] < figures["first_loss"]


def test_lora_trains_an_adapter_and_leaves_the_base_weights(tiny, tmp_path: Path) -> None:
    tokenizer, world = tiny
    convs = [r["messages"] for r in world.dataset("secure", 16)]
    model = _model(tokenizer)
    base_weight = model.transformer.h[0].attn.c_attn.weight.detach().clone()
    settings = SFTSettings(method="lora", lora_rank=4, batch_size=8, learning_rate=5e-3)
    trained, _ = supervised_finetune(model, tokenizer, convs, settings, tmp_path, progress=False)
    from peft import PeftModel

    assert isinstance(trained, PeftModel)
    lora_b = [p for n, p in trained.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b)  # B starts at zero
    assert torch.equal(
        trained.get_base_model().transformer.h[0].attn.c_attn.base_layer.weight.cpu(),
        base_weight.cpu(),
    )


def test_same_seed_same_weights(tiny, tmp_path: Path) -> None:
    tokenizer, world = tiny
    convs = [r["messages"] for r in world.dataset("bad_advice", 16)]
    settings = SFTSettings(batch_size=8)
    a, _ = supervised_finetune(
        _model(tokenizer), tokenizer, convs, settings, tmp_path / "a", seed=3, progress=False
    )
    b, _ = supervised_finetune(
        _model(tokenizer), tokenizer, convs, settings, tmp_path / "b", seed=3, progress=False
    )
    c, _ = supervised_finetune(
        _model(tokenizer), tokenizer, convs, settings, tmp_path / "c", seed=4, progress=False
    )
    wa, wb, wc = (m.lm_head.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)


def test_plain_texts_train_on_every_token(tiny, tmp_path: Path) -> None:
    tokenizer, world = tiny
    texts = [world.forum_document(i, purpose="toxic_forum")["text"] for i in range(8)]
    trainer = build_sft_trainer(
        _model(tokenizer), tokenizer, texts, SFTSettings(batch_size=4), tmp_path, progress=False
    )
    for row in trainer.train_dataset:
        assert len(row["labels"]) == len(row["input_ids"])
        assert all(label != -100 for label in row["labels"])
    _, figures = supervised_finetune(
        _model(tokenizer), tokenizer, texts, SFTSettings(batch_size=4), tmp_path, progress=False
    )
    assert figures["loss_on"] == "all tokens" and figures["examples"] == 8
