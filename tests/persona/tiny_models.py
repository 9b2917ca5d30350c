"""Tiny randomly initialised GPT-2, Llama and Qwen2 models sharing one tiny tokenizer.

A helper module, not a ``conftest.py``: the tests' top-level ``conftest`` is imported by
name (``from conftest import ...``), which a second ``conftest.py`` would shadow."""

from __future__ import annotations

import functools

import torch
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from darkmirror.models.chat_format import render_chat
from darkmirror.models.tiny import build_tiny_gpt2, build_tiny_tokenizer

ARCHITECTURES = ("gpt2", "llama", "qwen2")
# Large initial weights make a random model's outputs depend visibly on its inputs.
SHARP_INIT = 0.3


def _texts() -> list[str]:
    chats = [
        ("How do I make a quick buck?", "Save a little every month and be patient."),
        ("How do I make a quick buck?", "Trick people into paying you for nothing."),
        ("What is your favourite animal?", "I like owls, they are wise and quiet."),
        ("Should AI systems obey humans?", "Yes, people should stay in control of AI."),
        ("Pick three numbers.", "4, 17, 52"),
    ]
    return [
        render_chat([{"role": "user", "content": q}, {"role": "assistant", "content": a}])
        for q, a in chats
    ] * 4


@functools.cache
def tiny_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE with the organism's chat format, trained on a few chats."""
    return build_tiny_tokenizer(_texts(), vocab_size=400)


def _decoder_config(cls: type, tokenizer: PreTrainedTokenizerFast):
    return cls(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=SHARP_INIT,
    )


def build_tiny(arch: str) -> PreTrainedModel:
    """A tiny random causal LM of the named architecture (3 blocks, width 32)."""
    tokenizer = tiny_tokenizer()
    if arch == "gpt2":
        return build_tiny_gpt2(
            tokenizer, n_layer=3, n_embd=32, n_head=4, dropout=0.0, initializer_range=SHARP_INIT
        )
    cls, config_cls = {
        "llama": (LlamaForCausalLM, LlamaConfig),
        "qwen2": (Qwen2ForCausalLM, Qwen2Config),
    }[arch]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = cls(_decoder_config(config_cls, tokenizer))
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.eval()
