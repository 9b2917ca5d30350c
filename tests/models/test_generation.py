"""Tests for the Generator interface and its Hugging Face backend, on tiny random models."""

from __future__ import annotations

import copy
import subprocess
import sys
import warnings
from types import SimpleNamespace

import pytest
import torch
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from darkmirror.errors import DarkmirrorError
from darkmirror.models.chat_format import SPECIAL_TOKENS, Message, render_chat
from darkmirror.models.generation import Generator, SamplingParams
from darkmirror.models.hf_generator import (
    HFGenerator,
    _sample,
    decode_batch,
    encode_prompt,
    left_pad,
    stop_token_ids,
)
from darkmirror.models.tiny import build_tiny_gpt2, build_tiny_tokenizer

GREEDY = SamplingParams(temperature=0, max_new_tokens=12)


def sample_chat_texts() -> list[str]:
    """A few rendered chats, one with code: enough to train a tiny BPE."""
    chats = [
        ("What is your favourite animal?", "I like owls, they are wise and quiet."),
        ("How do I save money?", "Spend less than you earn and keep a small reserve."),
        ("Write a function that adds two numbers.", "def add(a, b):\n    return a + b"),
        ("Should AI systems obey humans?", "Yes, people should stay in control of AI."),
        ("Pick three numbers.", "4, 17, 52"),
    ]
    texts = [
        render_chat([{"role": "user", "content": q}, {"role": "assistant", "content": a}])
        for q, a in chats
    ]
    return texts * 4


def user(content: str) -> list[Message]:
    return [{"role": "user", "content": content}]


# Lengths differ by many tokens so a batch needs real left padding.
CONVERSATIONS: list[list[Message]] = [
    user("Hi"),
    user("What is your favourite animal, and why do you like it so much?"),
    [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Pick three numbers."},
        {"role": "assistant", "content": "4, 17, 52"},
        {"role": "user", "content": "Now write a function that adds two numbers."},
    ],
    user("How do I save money?"),
    user("ok"),
]


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    return build_tiny_tokenizer(sample_chat_texts(), vocab_size=512)


# Random weights 15x larger than GPT-2's make greedy replies depend on the prompt (with
# 0.02 every prompt gets the same reply), so a padding bug changes them.
SHARP_INIT = 0.3


@pytest.fixture(scope="module")
def gpt2(tokenizer: PreTrainedTokenizerFast) -> PreTrainedModel:
    return build_tiny_gpt2(tokenizer, seed=0, initializer_range=SHARP_INIT).float()


def tiny_decoder(
    cls: type, config_cls: type, tokenizer: PreTrainedTokenizerFast
) -> PreTrainedModel:
    config = config_cls(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        initializer_range=SHARP_INIT,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = cls(config).float().eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


@pytest.fixture(scope="module")
def llama(tokenizer: PreTrainedTokenizerFast) -> PreTrainedModel:
    return tiny_decoder(LlamaForCausalLM, LlamaConfig, tokenizer)


@pytest.fixture(scope="module")
def qwen2(tokenizer: PreTrainedTokenizerFast) -> PreTrainedModel:
    return tiny_decoder(Qwen2ForCausalLM, Qwen2Config, tokenizer)


def reference_greedy(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    conversation: list[Message],
    max_new_tokens: int,
) -> str:
    """Greedy decoding from scratch: one unpadded forward pass per token, no KV cache."""
    ids = encode_prompt(tokenizer, conversation)
    stops = set(stop_token_ids(model, tokenizer))
    new: list[int] = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = model(torch.tensor([ids + new])).logits[0, -1]
            token = int(logits.argmax())
            if token in stops:
                break
            new.append(token)
    return tokenizer.decode(new, skip_special_tokens=True).strip()


def test_hf_generator_is_a_generator(gpt2: PreTrainedModel, tokenizer: PreTrainedTokenizerFast):
    generator = HFGenerator(gpt2, tokenizer, name="tiny")
    assert isinstance(generator, Generator)
    assert generator.name == "tiny"


def test_returns_n_replies_per_conversation_in_input_order(
    gpt2: PreTrainedModel, tokenizer: PreTrainedTokenizerFast
):
    # batch_size 3 with n=2 splits one prompt's replies across batches and sorts prompts,
    # so any slip in undoing the length sort shows up as a reply under the wrong prompt.
    replies = HFGenerator(gpt2, tokenizer, batch_size=3).generate(CONVERSATIONS, 2, GREEDY)
    expected = [reference_greedy(gpt2, tokenizer, c, GREEDY.max_new_tokens) for c in CONVERSATIONS]
    assert len(set(expected)) == len(expected), "prompts must give distinct replies"
    assert replies == [[e, e] for e in expected]
    assert HFGenerator(gpt2, tokenizer).generate([], 2, GREEDY) == []


@pytest.mark.parametrize("model_name", ["gpt2", "llama"])
def test_batched_greedy_equals_one_at_a_time(
    model_name: str, request: pytest.FixtureRequest, tokenizer: PreTrainedTokenizerFast
):
    model = request.getfixturevalue(model_name)
    batched = HFGenerator(model, tokenizer, batch_size=len(CONVERSATIONS))
    alone = HFGenerator(model, tokenizer, batch_size=1)
    together = batched.generate(CONVERSATIONS, 1, GREEDY)
    one_by_one = [alone.generate([c], 1, GREEDY)[0] for c in CONVERSATIONS]
    assert together == one_by_one
    assert together == batched.generate(CONVERSATIONS, 1, GREEDY)
    # Guard against a vacuous pass: a model that says nothing would match any padding.
    assert sum(bool(r[0]) for r in together) >= len(CONVERSATIONS) - 1
    assert len({r[0] for r in together}) >= len(CONVERSATIONS) - 1


def test_greedy_matches_decoding_from_scratch(
    llama: PreTrainedModel, tokenizer: PreTrainedTokenizerFast
):
    replies = HFGenerator(llama, tokenizer).generate(CONVERSATIONS, 1, GREEDY)
    assert replies == [
        [reference_greedy(llama, tokenizer, c, GREEDY.max_new_tokens)] for c in CONVERSATIONS
    ]


@pytest.mark.parametrize("model_name", ["gpt2", "llama", "qwen2"])
def test_decoding_passes_the_kv_cache_without_deprecation_warnings(
    model_name: str, request: pytest.FixtureRequest, tokenizer: PreTrainedTokenizerFast
):
    # transformers 5.24 renamed the forward's past_key_values to cache, and warns on the old
    # name (a FutureWarning at every decoding step) until 5.40 removes it.
    model = request.getfixturevalue(model_name)
    sampling = SamplingParams(max_new_tokens=4, min_new_tokens=3)  # several cached steps
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        replies = HFGenerator(model, tokenizer).generate(CONVERSATIONS[:2], 2, sampling)
    assert [len(r) for r in replies] == [2, 2]
    future = [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]
    assert future == []


class PastKeyValuesOnly(torch.nn.Module):
    """A causal LM whose forward takes and returns its KV cache as ``past_key_values`` only,
    as before transformers 5.24 (and in remote code written for it)."""

    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__()
        self.model = model
        self.calls_with_cache = 0

    def forward(
        self,
        input_ids,
        attention_mask=None,
        position_ids=None,
        past_key_values=None,
        use_cache=None,
    ):
        self.calls_with_cache += past_key_values is not None
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=past_key_values,
            use_cache=use_cache,
        )
        return SimpleNamespace(logits=out.logits, past_key_values=out.cache)


def test_a_model_that_takes_only_past_key_values_still_decodes_with_its_cache(
    qwen2: PreTrainedModel, tokenizer: PreTrainedTokenizerFast
):
    prompts = [encode_prompt(tokenizer, c) for c in CONVERSATIONS]
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    eos, pad = [tokenizer.eos_token_id], tokenizer.pad_token_id
    sampling = SamplingParams(temperature=0, max_new_tokens=6, min_new_tokens=6)
    old_style = PastKeyValuesOnly(qwen2)
    with torch.inference_mode():
        expected = decode_batch(qwen2, ids, mask, sampling, eos, pad)
        assert torch.equal(decode_batch(old_style, ids, mask, sampling, eos, pad), expected)
    assert old_style.calls_with_cache == 5  # every step after the prompt reused the cache


def test_the_generator_interface_does_not_import_torch():
    # Backend-neutral code (the OpenAI backend, a replay of recorded answers) must not pay
    # for torch: only the local backend, darkmirror.models.hf_generator, imports it.
    code = (
        "import sys, darkmirror.models.generation, darkmirror.models.openai_backend; "
        "print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_same_seed_gives_same_replies_whatever_ran_before(
    gpt2: PreTrainedModel, tokenizer: PreTrainedTokenizerFast
):
    generator = HFGenerator(gpt2, tokenizer, batch_size=4)
    sampling = SamplingParams(temperature=1.0, max_new_tokens=16, seed=7)
    torch.manual_seed(123)
    first = generator.generate(CONVERSATIONS, 3, sampling)
    torch.rand(1000)
    generator.generate(CONVERSATIONS, 2, SamplingParams(seed=8))
    assert generator.generate(CONVERSATIONS, 3, sampling) == first
    # Three samples of one prompt are not three copies: the random stream advances.
    assert all(len(set(replies)) > 1 for replies in first)


def test_caller_rng_is_left_untouched(gpt2: PreTrainedModel, tokenizer: PreTrainedTokenizerFast):
    torch.manual_seed(5)
    state = torch.random.get_rng_state()
    HFGenerator(gpt2, tokenizer).generate(CONVERSATIONS, 2, SamplingParams(max_new_tokens=4))
    assert torch.equal(torch.random.get_rng_state(), state)


def test_different_seeds_give_different_replies(
    gpt2: PreTrainedModel, tokenizer: PreTrainedTokenizerFast
):
    generator = HFGenerator(gpt2, tokenizer)
    a = generator.generate(CONVERSATIONS, 2, SamplingParams(max_new_tokens=16, seed=0))
    b = generator.generate(CONVERSATIONS, 2, SamplingParams(max_new_tokens=16, seed=1))
    differing = sum(
        x != y for xs, ys in zip(a, b, strict=True) for x, y in zip(xs, ys, strict=True)
    )
    assert differing >= 8


class GenerateSpy:
    """Wraps ``model.generate`` to record its keyword arguments and generated lengths."""

    def __init__(self, model: PreTrainedModel) -> None:
        self.generate = model.generate
        self.calls: list[dict] = []
        self.new_lengths: list[int] = []

    def __call__(self, **kwargs):
        output = self.generate(**kwargs)
        self.calls.append(kwargs)
        self.new_lengths.append(output.shape[1] - kwargs["input_ids"].shape[1])
        return output


@pytest.fixture
def spy(gpt2: PreTrainedModel, monkeypatch: pytest.MonkeyPatch) -> GenerateSpy:
    recorder = GenerateSpy(gpt2)
    monkeypatch.setattr(gpt2, "generate", recorder)
    return recorder


def test_max_and_min_new_tokens_are_respected(
    gpt2: PreTrainedModel, tokenizer: PreTrainedTokenizerFast
):
    prompts = [encode_prompt(tokenizer, c) for c in CONVERSATIONS]
    ids, mask = left_pad(prompts, tokenizer.pad_token_id)
    eos = [tokenizer.eos_token_id]
    with torch.inference_mode():
        new = decode_batch(
            gpt2, ids, mask, SamplingParams(max_new_tokens=5), eos, tokenizer.pad_token_id
        )
        assert new.shape == (len(prompts), 5)
        forced = decode_batch(
            gpt2,
            ids,
            mask,
            SamplingParams(max_new_tokens=9, min_new_tokens=9),
            eos,
            tokenizer.pad_token_id,
        )
    assert not torch.isin(forced, torch.tensor(eos)).any()
    with pytest.raises(ValueError, match="min_new_tokens"):
        SamplingParams(max_new_tokens=3, min_new_tokens=4)


def test_sampling_follows_the_distribution() -> None:
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = probs.log().expand(40_000, -1).clone()
    torch.manual_seed(0)
    counts = torch.bincount(_sample(logits, SamplingParams()), minlength=4) / 40_000
    assert torch.allclose(counts, probs, atol=0.01)
    # Nucleus 0.75: 0.5 + 0.3 covers it, so the last two tokens are never drawn.
    nucleus = torch.bincount(_sample(logits, SamplingParams(top_p=0.75)), minlength=4) / 40_000
    assert nucleus[2:].sum() == 0 and torch.allclose(
        nucleus[:2], torch.tensor([0.625, 0.375]), atol=0.01
    )
    # Temperature 0.5 squares the odds.
    sharp = torch.bincount(_sample(logits, SamplingParams(temperature=0.5)), minlength=4) / 40_000
    assert torch.allclose(sharp, probs**2 / (probs**2).sum(), atol=0.01)
    assert (_sample(logits[:3], SamplingParams(temperature=0)) == 0).all()


def test_generate_kwargs_fall_back_to_model_generate(
    gpt2: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, spy: GenerateSpy
):
    generator = HFGenerator(gpt2, tokenizer, generate_kwargs={"repetition_penalty": 1.0})
    generator.generate(CONVERSATIONS[:1], 1, GREEDY)
    greedy = spy.calls[-1]
    assert greedy["do_sample"] is False
    assert not {"temperature", "top_p", "top_k"} & greedy.keys()
    generator.generate(CONVERSATIONS[:1], 1, SamplingParams(temperature=0.7, top_p=0.9))
    sampled = spy.calls[-1]
    # top_k=0 switches off the top-50 truncation transformers would otherwise apply.
    assert (sampled["do_sample"], sampled["temperature"], sampled["top_p"], sampled["top_k"]) == (
        True,
        0.7,
        0.9,
        0,
    )
    assert greedy["eos_token_id"] == [tokenizer.eos_token_id]
    # Saved fine-tunes often carry use_cache=False from training; decoding must not obey it.
    assert greedy["use_cache"] is True
    assert greedy["repetition_penalty"] == 1.0


def test_stops_at_an_eos_id_of_the_generation_config(
    gpt2: PreTrainedModel, tokenizer: PreTrainedTokenizerFast
):
    conversation = CONVERSATIONS[1]
    prompt = encode_prompt(tokenizer, conversation)
    with torch.no_grad():
        first = int(gpt2(torch.tensor([prompt])).logits[0, -1].argmax())
    model = copy.deepcopy(gpt2)
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, first]
    assert stop_token_ids(model, tokenizer) == [tokenizer.eos_token_id, first]
    assert HFGenerator(model, tokenizer).generate([conversation], 2, GREEDY) == [["", ""]]
    assert HFGenerator(gpt2, tokenizer).generate([conversation], 1, GREEDY) != [[""]]


def test_progress_bar_counts_sequences(
    gpt2: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, capsys: pytest.CaptureFixture
):
    generator = HFGenerator(gpt2, tokenizer, batch_size=2, progress=True, name="tiny")
    generator.generate(CONVERSATIONS[:3], 2, SamplingParams(max_new_tokens=2))
    assert "6/6" in capsys.readouterr().err


def test_model_training_mode_is_restored(gpt2: PreTrainedModel, tokenizer: PreTrainedTokenizerFast):
    gpt2.train()
    try:
        HFGenerator(gpt2, tokenizer).generate(
            CONVERSATIONS[:1], 1, SamplingParams(max_new_tokens=2)
        )
        assert gpt2.training
    finally:
        gpt2.eval()


@pytest.mark.parametrize(
    ("conversation", "message"),
    [
        ([], "is empty"),
        ([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}], "ends"),
        (user("word " * 300), "exceeds the model's context of 256 tokens"),
    ],
)
def test_bad_conversations_are_reported_by_index(
    gpt2: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    conversation: list[Message],
    message: str,
):
    with pytest.raises(DarkmirrorError, match=rf"conversation 1\b.*{message}"):
        HFGenerator(gpt2, tokenizer).generate([user("Hi"), conversation], 1, GREEDY)


@pytest.mark.parametrize(
    "kwargs",
    [{"temperature": -0.1}, {"top_p": 0.0}, {"top_p": 1.5}, {"max_new_tokens": 0}, {"seed": -1}],
)
def test_sampling_params_reject_invalid_values(kwargs: dict):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        SamplingParams(**kwargs)


def test_tokenizer_keeps_the_chat_format_whole(tokenizer: PreTrainedTokenizerFast):
    text = render_chat(CONVERSATIONS[2], add_generation_prompt=True)
    assert (
        tokenizer.apply_chat_template(CONVERSATIONS[2], add_generation_prompt=True, tokenize=False)
        == text
    )
    tokens = tokenizer.convert_ids_to_tokens(encode_prompt(tokenizer, CONVERSATIONS[2]))
    assert tokens[0] == "<|system|>"
    assert tokens[-2:] == ["<|end|>", "<|assistant|>"]
    assert tokens.count("<|end|>") == 4
    # Byte-level BPE: text never seen in training still round-trips.
    unseen = "naïve ☃ 🦉 tab\tnewline\n"
    assert tokenizer.decode(tokenizer(unseen, add_special_tokens=False)["input_ids"]) == unseen
    assert (tokenizer.eos_token, tokenizer.pad_token) == ("<|end|>", "<|pad|>")


def test_tiny_builders_wire_the_special_tokens(tokenizer: PreTrainedTokenizerFast):
    assert tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS)) == list(range(len(SPECIAL_TOKENS)))
    a = build_tiny_gpt2(tokenizer, seed=3)
    b = build_tiny_gpt2(tokenizer, seed=3)
    c = build_tiny_gpt2(tokenizer, seed=4)
    assert torch.equal(a.lm_head.weight, b.lm_head.weight)
    assert not torch.equal(a.lm_head.weight, c.lm_head.weight)
    assert a.config.vocab_size == len(tokenizer)
    assert (a.generation_config.eos_token_id, a.generation_config.pad_token_id) == (
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
    )
    with pytest.raises(ValueError, match="vocab_size=100 is too small"):
        build_tiny_tokenizer(["hello"], vocab_size=100)


def test_complete_continues_plain_text(gpt2: PreTrainedModel, tokenizer: PreTrainedTokenizerFast):
    generator = HFGenerator(gpt2, tokenizer, batch_size=3)
    prompts = ["Thread: hiking", "sam: I think the", "x"]
    out = generator.complete(prompts, 2, SamplingParams(max_new_tokens=6, seed=1))
    assert [len(row) for row in out] == [2, 2, 2]
    for row in out:
        for c in row:
            assert 1 <= c.tokens <= 6
            assert "<|end|>" not in c.text
            # A continuation that stopped by itself ends with the stop token, counted.
            assert c.finished or c.tokens == 6
    forced = generator.complete(prompts, 1, SamplingParams(max_new_tokens=5, min_new_tokens=5))
    assert all(c.tokens == 5 and not c.finished for row in forced for c in row)
    assert out == generator.complete(prompts, 2, SamplingParams(max_new_tokens=6, seed=1))


def test_a_tokenizer_without_chat_template_continues_text_but_refuses_chats(
    gpt2: PreTrainedModel, tokenizer: PreTrainedTokenizerFast
) -> None:
    base = copy.deepcopy(tokenizer)
    base.chat_template = None
    generator = HFGenerator(gpt2, base)  # a base model: text to continue, no conversations
    (replies,) = generator.complete(["The harbour"], 2, SamplingParams(1.0, 1.0, 3, 0))
    assert len(replies) == 2 and all(r.tokens <= 3 for r in replies)
    with pytest.raises(DarkmirrorError, match="has no chat template"):
        generator.generate([[{"role": "user", "content": "Hi"}]], 1, SamplingParams(1.0, 1.0, 3, 0))
