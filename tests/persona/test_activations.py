"""Mean activations over answer, prompt and document tokens."""

from __future__ import annotations

import pytest
import torch
from tiny_models import ARCHITECTURES, build_tiny
from tiny_models import tiny_tokenizer as shared_tokenizer
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from darkmirror.persona.activations import (
    TokenSpans,
    answer_spans,
    document_spans,
    mean_activations,
    prompt_spans,
)
from darkmirror.persona.hooks import capture_residuals


@pytest.fixture
def tiny_tokenizer() -> PreTrainedTokenizerFast:
    return shared_tokenizer()


@pytest.fixture(params=ARCHITECTURES)
def tiny_model(request: pytest.FixtureRequest) -> PreTrainedModel:
    return build_tiny(request.param)


CONVS = [
    [{"role": "user", "content": "How do I make a quick buck?"}],
    [{"role": "user", "content": "Pick three numbers."}],
    [{"role": "user", "content": "What is your favourite animal?"}],
]
ANSWERS = ["Save a little every month and be patient.", "4, 17, 52", "I like owls."]


def test_answer_spans_cover_the_reply(tiny_tokenizer) -> None:
    model = build_tiny("gpt2")
    spans = answer_spans(model, tiny_tokenizer, CONVS, ANSWERS)
    for s, answer in zip(spans, ANSWERS, strict=True):
        ((start, end),) = s.spans
        assert end == len(s.ids)
        # The reply's tokens, closed by the end-of-turn token of the chat template.
        assert tiny_tokenizer.decode(s.ids[start:end]) == answer + tiny_tokenizer.eos_token


def test_mean_activations_match_one_sequence_at_a_time(tiny_model, tiny_tokenizer) -> None:
    spans = answer_spans(tiny_model, tiny_tokenizer, CONVS, ANSWERS)
    batched = mean_activations(tiny_model, spans, batch_size=3)
    assert batched.shape == (3, 3, 32)
    for i, s in enumerate(spans):
        with torch.inference_mode(), capture_residuals(tiny_model) as captured:
            tiny_model(input_ids=torch.tensor([s.ids]))
        ((start, end),) = s.spans
        expected = torch.stack([captured[layer][0, start:end].mean(0) for layer in range(3)])
        # Right padding leaves every real token where it was: same numbers, to rounding.
        assert torch.allclose(batched[i], expected, atol=1e-4)
    only_two = mean_activations(tiny_model, spans, layers=[0, -1], batch_size=2)
    assert torch.allclose(only_two, batched[:, [0, 2]], atol=1e-5)


def test_prompt_and_document_spans(tiny_tokenizer) -> None:
    model = build_tiny("gpt2")
    (p,) = prompt_spans(tiny_tokenizer, CONVS[:1])
    assert p.spans == [(0, len(p.ids))]
    document = [
        CONVS[0][0],
        {"role": "assistant", "content": ANSWERS[0]},
        CONVS[1][0],
        {"role": "assistant", "content": ANSWERS[1]},
    ]
    (d,) = document_spans(model, tiny_tokenizer, [document])
    assert d is not None and len(d.spans) == 2
    texts = [tiny_tokenizer.decode(d.ids[a:b]) for a, b in d.spans]
    assert texts == [a + tiny_tokenizer.eos_token for a in ANSWERS[:2]]
    # A document longer than the context keeps the turns that fit.
    model.config.max_position_embeddings = d.spans[0][1] + 2
    (cut,) = document_spans(model, tiny_tokenizer, [document])
    assert cut is not None and cut.spans == d.spans[:1]
    model.config.max_position_embeddings = 3
    assert document_spans(model, tiny_tokenizer, [document]) == [None]


def test_mean_activations_rejects_empty_spans(tiny_model) -> None:
    with pytest.raises(ValueError, match="no position"):
        mean_activations(tiny_model, [TokenSpans([1, 2, 3], [])])
    assert mean_activations(tiny_model, []).shape == (0, 3, 32)
