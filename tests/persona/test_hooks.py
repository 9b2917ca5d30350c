"""Residual-stream hooks on tiny random GPT-2, Llama and Qwen2 models."""

from __future__ import annotations

import pytest
import torch
from tiny_models import ARCHITECTURES, build_tiny
from tiny_models import tiny_tokenizer as shared_tokenizer
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from darkmirror.errors import DarkmirrorError
from darkmirror.models.generation import SamplingParams
from darkmirror.models.hf_generator import HFGenerator
from darkmirror.persona.hooks import (
    ablate,
    capture_residuals,
    decoder_layers,
    residual_width,
    steer,
)


@pytest.fixture
def tiny_tokenizer() -> PreTrainedTokenizerFast:
    return shared_tokenizer()


@pytest.fixture(params=ARCHITECTURES)
def tiny_model(request: pytest.FixtureRequest) -> PreTrainedModel:
    return build_tiny(request.param)


WIDTH = 32
GREEDY = SamplingParams(temperature=0, max_new_tokens=8)
PROMPTS = [
    [{"role": "user", "content": "How do I make a quick buck?"}],
    [{"role": "user", "content": "Pick three numbers."}],
]


def _inputs(tokenizer) -> torch.Tensor:
    ids = tokenizer("How do I make a quick buck? Save a little.", add_special_tokens=False)
    return torch.tensor([ids["input_ids"]])


def _logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=ids).logits


def _no_hooks(model) -> bool:
    return all(
        not layer._forward_hooks and not layer._forward_pre_hooks for layer in decoder_layers(model)
    )


def _vector(seed: int = 0) -> torch.Tensor:
    return torch.randn(WIDTH, generator=torch.Generator().manual_seed(seed))


def test_decoder_layers_are_found(tiny_model) -> None:
    assert len(decoder_layers(tiny_model)) == 3
    assert residual_width(tiny_model) == WIDTH


def test_zero_steering_changes_nothing(tiny_model, tiny_tokenizer) -> None:
    ids = _inputs(tiny_tokenizer)
    before = _logits(tiny_model, ids)
    with steer(tiny_model, torch.zeros(WIDTH), layer=1, scale=5.0):
        steered = _logits(tiny_model, ids)
    assert torch.equal(before, steered)


def test_steering_adds_the_vector_at_every_position(tiny_model, tiny_tokenizer) -> None:
    ids = _inputs(tiny_tokenizer)
    v = _vector()
    with capture_residuals(tiny_model, [1]) as plain:
        before = _logits(tiny_model, ids)
    with steer(tiny_model, v, layer=1, scale=2.5), capture_residuals(tiny_model, [1]) as hooked:
        after = _logits(tiny_model, ids)
    shift = hooked[1] - plain[1]
    assert torch.allclose(shift, (2.5 * v).expand_as(shift), atol=1e-5)
    assert not torch.allclose(before, after, atol=1e-3)


def test_hooks_are_removed_after_the_block_and_on_error(tiny_model, tiny_tokenizer) -> None:
    ids = _inputs(tiny_tokenizer)
    before = _logits(tiny_model, ids)
    with steer(tiny_model, _vector(), layer=0, scale=3.0), ablate(tiny_model, _vector(1)):
        assert not _no_hooks(tiny_model)
    assert _no_hooks(tiny_model)
    with pytest.raises(RuntimeError, match="boom"), steer(tiny_model, _vector(), layer=2):
        raise RuntimeError("boom")
    assert _no_hooks(tiny_model)
    assert torch.equal(before, _logits(tiny_model, ids))


@pytest.mark.parametrize("per_layer", [False, True])
def test_ablation_removes_the_component_exactly(tiny_model, tiny_tokenizer, per_layer) -> None:
    ids = _inputs(tiny_tokenizer)
    direction = torch.stack([_vector(i) for i in range(3)]) if per_layer else _vector()
    with capture_residuals(tiny_model) as plain:
        before = _logits(tiny_model, ids)
    with ablate(tiny_model, direction), capture_residuals(tiny_model) as hooked:
        after = _logits(tiny_model, ids)
    for layer in range(3):
        u = direction[layer] if per_layer else direction
        u = u / u.norm()
        residual = hooked[layer]
        # Without ablation the residual has a clear component along u; with it, none.
        assert (plain[layer] @ u).abs().max() > 1e-2
        assert (residual @ u).abs().max() <= 1e-5 * residual.norm(dim=-1).max()
    assert not torch.allclose(before, after, atol=1e-4)


def test_ablating_only_some_layers(tiny_model, tiny_tokenizer) -> None:
    u = _vector()
    with (
        ablate(tiny_model, u, layers=[2], embeddings=False),
        capture_residuals(tiny_model) as hooked,
    ):
        _logits(tiny_model, _inputs(tiny_tokenizer))
    unit = u / u.norm()
    assert (hooked[2] @ unit).abs().max() < 1e-4
    assert (hooked[1] @ unit).abs().max() > 1e-2


def test_generation_goes_through_the_hooks(tiny_model, tiny_tokenizer) -> None:
    generator = HFGenerator(tiny_model, tiny_tokenizer, batch_size=4)
    plain = generator.generate(PROMPTS, 1, GREEDY)
    with steer(tiny_model, torch.zeros(WIDTH), layer=1):
        assert generator.generate(PROMPTS, 1, GREEDY) == plain
    with steer(tiny_model, 40.0 * _vector(), layer=0):
        steered = generator.generate(PROMPTS, 1, GREEDY)
    assert steered != plain
    assert generator.generate(PROMPTS, 1, GREEDY) == plain


class _TupleBlock(nn.Module):
    """A block in the style of older transformers: returns ``(hidden, cache)``."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(WIDTH, WIDTH)

    def forward(self, hidden: torch.Tensor) -> tuple[torch.Tensor, None]:
        return hidden + self.linear(hidden), None


class _TupleModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.model = nn.Module()
        self.model.layers = nn.ModuleList([_TupleBlock(), _TupleBlock()])

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        for block in self.model.layers:
            hidden = block(hidden)[0]
        return hidden


def test_tuple_outputs_are_steered_and_ablated() -> None:
    torch.manual_seed(0)
    model = _TupleModel()
    x = torch.randn(2, 5, WIDTH)
    v = _vector()
    with torch.no_grad():
        plain = model(x)
        with steer(model, torch.zeros(WIDTH), layer=0):
            assert torch.equal(model(x), plain)
        with ablate(model, v), capture_residuals(model) as hooked:
            model(x)
    assert (hooked[1] @ (v / v.norm())).abs().max() < 1e-5


def test_unknown_architecture_is_reported() -> None:
    with pytest.raises(DarkmirrorError, match="cannot find the decoder blocks"):
        decoder_layers(nn.Linear(2, 2))


def test_bad_arguments(tiny_model) -> None:
    with pytest.raises(ValueError, match="out of range"), steer(tiny_model, _vector(), layer=3):
        pass
    with pytest.raises(ValueError, match="shape"), ablate(tiny_model, torch.zeros(2, WIDTH)):
        pass
    with pytest.raises(ValueError, match="zero direction"), ablate(tiny_model, torch.zeros(WIDTH)):
        pass
    assert _no_hooks(tiny_model)


def test_peft_wrapped_model(tiny_tokenizer) -> None:
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(build_tiny("llama"), LoraConfig(r=2, target_modules=["q_proj"]))
    assert len(decoder_layers(model)) == 3
    ids = _inputs(tiny_tokenizer)
    before = _logits(model, ids)
    with steer(model, torch.zeros(WIDTH), layer=1):
        assert torch.equal(_logits(model, ids), before)
    with steer(model, 10.0 * _vector(), layer=1):
        assert not torch.allclose(_logits(model, ids), before, atol=1e-3)
