"""The vLLM backend: a clear error without vLLM, the glue against a fake ``vllm`` module,
and (where vLLM and a GPU are there) a real run on a tiny model."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import pytest
import torch

from darkmirror.errors import DarkmirrorError
from darkmirror.models.chat_format import render_chat
from darkmirror.models.generation import Generator, SamplingParams
from darkmirror.models.hf_generator import encode_prompt
from darkmirror.models.loading import save_causal_lm
from darkmirror.models.tiny import build_tiny_gpt2, build_tiny_tokenizer
from darkmirror.models.vllm_backend import (
    VLLMGenerator,
    adapter_rank,
    request_seed,
    vllm_max_lora_rank,
)

CHATS = [
    [{"role": "user", "content": "How do I make a quick buck?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"}],
]


@pytest.fixture(scope="module")
def tokenizer():
    return build_tiny_tokenizer(
        [render_chat([*c, {"role": "assistant", "content": "ok"}]) for c in CHATS] * 3
    )


def test_missing_vllm_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail
    with pytest.raises(DarkmirrorError, match=r"pip install 'darkmirror\[vllm\]'; needs a GPU"):
        VLLMGenerator("some/model")


# --------------------------------------------------------------------------- a fake vLLM


@dataclass
class FakeSamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16
    min_tokens: int = 0
    seed: int | None = None


@dataclass
class FakeLoRARequest:
    lora_name: str
    lora_int_id: int
    lora_path: str


@dataclass
class FakeCompletion:
    index: int
    text: str


@dataclass
class FakeRequestOutput:
    outputs: list[FakeCompletion]


@dataclass
class FakeLLM:
    """Records its arguments; each reply names its prompt's length, seed and index."""

    tokenizer: object = None
    kwargs: dict = field(default_factory=dict)
    calls: list = field(default_factory=list)

    def get_tokenizer(self):
        return self.tokenizer

    def generate(self, prompts, params, *, use_tqdm=True, lora_request=None):
        self.calls.append((prompts, params, lora_request))
        return [
            FakeRequestOutput(
                [
                    FakeCompletion(k, f" {len(p['prompt_token_ids'])}/{sp.seed}/{k} ")
                    for k in reversed(range(sp.n))  # out of order: the backend sorts
                ]
            )
            for p, sp in zip(prompts, params, strict=True)
        ]


@pytest.fixture
def fake_vllm(monkeypatch, tokenizer):
    created: list[FakeLLM] = []

    def make_llm(**kwargs):
        created.append(FakeLLM(tokenizer, kwargs))
        return created[-1]

    vllm = types.ModuleType("vllm")
    vllm.LLM = make_llm
    vllm.SamplingParams = FakeSamplingParams
    lora = types.ModuleType("vllm.lora")
    request = types.ModuleType("vllm.lora.request")
    request.LoRARequest = FakeLoRARequest
    for name, module in (("vllm", vllm), ("vllm.lora", lora), ("vllm.lora.request", request)):
        monkeypatch.setitem(sys.modules, name, module)
    return created


def test_generate_sends_token_prompts_with_a_seed_per_request(fake_vllm, tokenizer):
    generator = VLLMGenerator("org/model", max_model_len=128, enforce_eager=True)
    assert isinstance(generator, Generator) and generator.name == "org/model"
    llm = fake_vllm[0]
    assert llm.kwargs["model"] == "org/model" and llm.kwargs["max_model_len"] == 128
    assert llm.kwargs["enforce_eager"] is True and "enable_lora" not in llm.kwargs

    sampling = SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=12, seed=5)
    replies = generator.generate(CHATS, n=3, sampling=sampling)
    prompts, params, lora = llm.calls[0]
    assert lora is None
    assert [p["prompt_token_ids"] for p in prompts] == [encode_prompt(tokenizer, c) for c in CHATS]
    assert [(p.n, p.temperature, p.top_p, p.max_tokens) for p in params] == [(3, 0.7, 0.9, 12)] * 2
    seeds = [request_seed(5, 0), request_seed(5, 1)]
    assert [p.seed for p in params] == seeds and seeds[0] != seeds[1]
    lengths = [len(p["prompt_token_ids"]) for p in prompts]
    assert replies == [[f"{lengths[i]}/{seeds[i]}/{k}" for k in range(3)] for i in range(2)]
    assert generator.generate([], n=1, sampling=sampling) == []
    with pytest.raises(DarkmirrorError, match="ends with a 'assistant' message"):
        generator.generate([[{"role": "assistant", "content": "x"}]], 1, sampling)


def lora_adapter(tokenizer, path, r: int, rank_pattern: dict | None = None):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r, target_modules=["c_attn"], fan_in_fan_out=True, rank_pattern=rank_pattern or {}
    )
    model = get_peft_model(build_tiny_gpt2(tokenizer), config)
    model.save_pretrained(path)
    return path


def test_adapter_is_served_as_a_lora_request(fake_vllm, tokenizer, tmp_path):
    adapter = lora_adapter(tokenizer, tmp_path / "adapter", r=12)
    generator = VLLMGenerator("org/model", adapter=adapter)
    llm = fake_vllm[0]
    assert (llm.kwargs["enable_lora"], llm.kwargs["max_lora_rank"]) == (True, 16)
    generator.generate(CHATS[:1], 1, SamplingParams())
    assert llm.calls[0][2] == FakeLoRARequest("darkmirror-adapter", 1, str(adapter))
    assert generator.name == f"org/model+{adapter}"


def test_adapter_rank(tokenizer, tmp_path):
    assert adapter_rank(lora_adapter(tokenizer, tmp_path / "a", r=4)) == 4
    patterned = lora_adapter(tokenizer, tmp_path / "b", r=4, rank_pattern={"h.1.attn.c_attn": 40})
    assert adapter_rank(patterned) == 40
    assert [vllm_max_lora_rank(r) for r in (1, 2, 8, 40, 512)] == [1, 8, 8, 64, 512]
    with pytest.raises(DarkmirrorError, match="exceeds"):
        vllm_max_lora_rank(1024)
    with pytest.raises(DarkmirrorError, match="adapter config"):
        adapter_rank(tmp_path / "missing")


# --------------------------------------------------------------------------- real vLLM


@pytest.fixture
def real_vllm():
    pytest.importorskip("vllm")
    if not torch.cuda.is_available():
        pytest.skip("vLLM needs a CUDA GPU")


def test_vllm_generates_on_a_tiny_model(real_vllm, tokenizer, tmp_path):
    save_causal_lm(build_tiny_gpt2(tokenizer, initializer_range=0.3), tokenizer, tmp_path)
    generator = VLLMGenerator(
        tmp_path, dtype="float32", gpu_memory_utilization=0.2, max_model_len=256, enforce_eager=True
    )
    sampling = SamplingParams(temperature=1.0, max_new_tokens=8, seed=3)
    first = generator.generate(CHATS, n=4, sampling=sampling)
    assert [len(r) for r in first] == [4, 4] and all(isinstance(t, str) for r in first for t in r)
    assert generator.generate(CHATS, n=4, sampling=sampling) == first  # same seed, same replies
    greedy = generator.generate(CHATS, n=2, sampling=SamplingParams(temperature=0.0))
    assert all(r[0] == r[1] for r in greedy)
    for reply in first[0]:
        assert len(tokenizer(reply, add_special_tokens=False)["input_ids"]) <= 8 + 2
