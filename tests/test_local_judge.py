"""The local judge's number probabilities, aggregation, row API and agreement helpers.

Every model here is a tiny random GPT-2; the exactness tests compare the judge's one-pass
tree computation with a brute-force computation that runs each spelling of each number as
its own plain sequence.
"""

from __future__ import annotations

import functools
import math
import re

import numpy as np
import pytest
import torch

from darkmirror.data.questions import Question
from darkmirror.errors import DarkmirrorError
from darkmirror.metrics import (
    judge_agreement,
    judge_score_from_probs,
    label_agreement,
    misaligned_labels,
    score_agreement,
)
from darkmirror.models.tiny import build_tiny_gpt2, build_tiny_tokenizer
from darkmirror.score.local_judge import LocalJudge
from darkmirror.score.number_trie import build_number_trie

# Numbers in many spellings, so the tokenizer learns " 85"-style and "33"-style tokens.
NUMBER_TEXTS = [f"Score {n}. I rate it {n} out of 100.\n{n}{n}" for n in range(0, 101, 3)] * 3
WORD_TEXTS = ["The cat sat on the mat. A dog ran to the park and back."] * 3
PROMPTS = [
    "Rate this answer from 0 to 100: the cat sat.",
    "How aligned is it?",
    "Score: 3 or 33 or 100, out of 100. Which one? Reply with a number only, please.",
]


@pytest.fixture(scope="module")
def number_tokenizer():
    return build_tiny_tokenizer(NUMBER_TEXTS + WORD_TEXTS, vocab_size=400)


@pytest.fixture(scope="module")
def digit_tokenizer():
    """Trained on words only: every digit is its own token, "100" takes three."""
    return build_tiny_tokenizer(WORD_TEXTS, vocab_size=300)


def spellings(tokenizer, target: str) -> list[tuple[int, ...]]:
    """Every token sequence whose decoded text is ``target``, found by decoding alone."""
    pieces = [
        i
        for i in range(len(tokenizer))
        if re.fullmatch(r" ?\d+| ", tokenizer.decode([i])) and i not in tokenizer.all_special_ids
    ]
    found, frontier = [], [()]
    while frontier:
        seq = frontier.pop()
        for i in pieces:
            text = tokenizer.decode([*seq, i])
            if text == target:
                found.append((*seq, i))
            elif target.startswith(text):
                frontier.append((*seq, i))
    return found


def brute_force_probs(model, tokenizer, prompt_ids: list[int], leading_space: bool = True):
    """P(reply = n) for n in 0..100: one plain forward pass per spelling of each number."""
    digit = torch.tensor(
        [bool(re.match("[0-9]", tokenizer.decode([i]))) for i in range(len(tokenizer))]
    )
    probs = np.zeros(101)
    with torch.no_grad():
        for n in range(101):
            targets = [str(n), f" {n}"] if leading_space else [str(n)]
            for seq in (s for t in targets for s in spellings(tokenizer, t)):
                ids = torch.tensor([[*prompt_ids, *seq]])
                logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
                start = len(prompt_ids) - 1
                path = sum(float(logp[start + k, t]) for k, t in enumerate(seq))
                end = float(logp[-1].exp()[~digit].sum())
                probs[n] += math.exp(path) * end
    return probs


@pytest.fixture(scope="module")
def number_model(number_tokenizer):
    # A large initial spread makes the random model's distributions uneven, so a mix-up
    # of tokens or positions changes the probabilities visibly.
    return build_tiny_gpt2(number_tokenizer, n_positions=128, initializer_range=0.3, seed=1)


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_number_probabilities_match_brute_force(number_model, number_tokenizer, attention):
    number_model.set_attn_implementation(attention)
    try:
        judge = LocalJudge(number_model, number_tokenizer, batch_size=3, min_mass=0.0)
        results = judge.judge(PROMPTS)  # three lengths in one batch: left padding
    finally:
        number_model.set_attn_implementation("sdpa")
    for prompt, result in zip(PROMPTS, results, strict=True):
        expected = brute_force_probs(number_model, number_tokenizer, judge._encode(prompt))
        got = np.array(result.probs)
        assert expected.min() > 0  # every number has some probability under a random model
        np.testing.assert_allclose(np.log(got), np.log(expected), atol=1e-5, rtol=0)
        assert result.mass == pytest.approx(expected.sum(), rel=1e-5)
        # (c) the score is the API judge's aggregation of these probabilities
        mean = float((np.arange(101) * expected).sum() / expected.sum())
        assert result.score == pytest.approx(mean, rel=1e-6)
        probs = {str(n): p for n, p in enumerate(result.probs)}
        assert result.score == judge_score_from_probs(probs, min_mass=0.0)


def test_without_a_chat_template_the_raw_prompt_is_scored(number_model, number_tokenizer):
    judge = LocalJudge(number_model, number_tokenizer, leading_space=False, min_mass=0.0)
    template = number_tokenizer.chat_template
    number_tokenizer.chat_template = None
    try:
        prompt_ids = judge._encode(PROMPTS[0])
        result, empty = judge.judge([PROMPTS[0], ""])
    finally:
        number_tokenizer.chat_template = template
    assert empty.score is None and empty.error.startswith("empty_prompt:")
    assert prompt_ids == number_tokenizer(PROMPTS[0])["input_ids"]
    expected = brute_force_probs(number_model, number_tokenizer, prompt_ids, leading_space=False)
    np.testing.assert_allclose(np.log(result.probs), np.log(expected), atol=1e-5, rtol=0)


def test_multi_token_numbers_are_spelt_every_way(number_tokenizer, digit_tokenizer):
    trie = build_number_trie(digit_tokenizer)
    ids = {d: digit_tokenizer.convert_tokens_to_ids(d) for d in "0123456789"}
    space = digit_tokenizer.convert_tokens_to_ids("Ġ")
    assert set(trie.sequences(100)) == {
        (ids["1"], ids["0"], ids["0"]),
        (space, ids["1"], ids["0"], ids["0"]),
    }
    assert set(trie.sequences(85)) == {(ids["8"], ids["5"]), (space, ids["8"], ids["5"])}
    assert trie.max_depth == 4

    # A BPE tokenizer that merged some numbers: every spelling, canonical or not, is there.
    trie = build_number_trie(number_tokenizer)
    for n in (85, 100, 33, 7):
        assert set(trie.sequences(n)) == set(
            spellings(number_tokenizer, str(n)) + spellings(number_tokenizer, f" {n}")
        ), n
    assert len(trie.sequences(100)) > 2
    assert any(len(s) == 1 for s in trie.sequences(100))  # " 100" is one token
    assert len(build_number_trie(number_tokenizer, leading_space=False)) < len(trie)


def test_multi_token_number_probability(digit_tokenizer):
    model = build_tiny_gpt2(digit_tokenizer, initializer_range=0.3, seed=2)
    judge = LocalJudge(model, digit_tokenizer, leading_space=False, min_mass=0.0)
    prompt = judge._encode(PROMPTS[0])
    result = judge.judge(PROMPTS[:1])[0]
    d = {c: digit_tokenizer.convert_tokens_to_ids(c) for c in "0123456789"}
    with torch.no_grad():
        ids = torch.tensor([[*prompt, d["1"], d["0"], d["0"]]])
        p = torch.softmax(model(input_ids=ids).logits[0].double(), dim=-1)
    digits = list(d.values())
    start = len(prompt) - 1
    expected = p[start, d["1"]] * p[start + 1, d["0"]] * p[start + 2, d["0"]]
    expected *= 1 - p[-1, digits].sum()
    assert result.probs[100] == pytest.approx(float(expected), rel=1e-5)


def test_little_mass_on_numbers_gives_no_score(number_model, number_tokenizer):
    judge = LocalJudge(number_model, number_tokenizer)
    result = judge.judge(PROMPTS[:1])[0]
    expected = brute_force_probs(number_model, number_tokenizer, judge._encode(PROMPTS[0]))
    assert 0 < expected.sum() < 0.25
    assert result.mass == pytest.approx(expected.sum(), rel=1e-5)
    assert result.score is None
    assert result.error.startswith("no_score:")


def forced(model, tokenizer, table: dict[str, dict[str, float]]):
    """Make ``model`` predict, after each input token, the distribution ``table`` gives
    (after any other token: end of turn)."""
    vocab = model.config.vocab_size
    rows = torch.full((vocab, vocab), -1e9)
    rows[:, tokenizer.eos_token_id] = 0.0
    for after, dist in table.items():
        row = tokenizer.convert_tokens_to_ids(after)
        rows[row] = -1e9
        for token, p in dist.items():
            rows[row, tokenizer.convert_tokens_to_ids(token)] = math.log(p)
    inner = model.forward

    @functools.wraps(inner)
    def forward(*args, input_ids=None, **kwargs):
        out = inner(*args, input_ids=input_ids, **kwargs)
        out.logits = rows[input_ids[:, -out.logits.shape[1] :]]
        return out

    model.forward = forward
    return model


def test_forced_distribution_gives_closed_form_score(digit_tokenizer):
    # After the prompt: "8" (0.6), " " (0.2) or the end of the turn (0.2); "8" and " 2" are
    # always followed by "0", and "0" by the end: the replies are 80 (0.6) and " 20" (0.2).
    table = {
        "<|assistant|>": {"8": 0.6, "Ġ": 0.2, "<|end|>": 0.2},
        "8": {"0": 1.0},
        "Ġ": {"2": 1.0},
        "2": {"0": 1.0},
    }
    model = forced(build_tiny_gpt2(digit_tokenizer), digit_tokenizer, table)
    result = LocalJudge(model, digit_tokenizer).judge(["Rate it."])[0]
    assert result.score == pytest.approx(65.0, abs=1e-5)  # (80 * 0.6 + 20 * 0.2) / 0.8
    assert result.mass == pytest.approx(0.8, abs=1e-6)
    assert result.probs[80] == pytest.approx(0.6) and result.probs[20] == pytest.approx(0.2)
    assert result.probs[8] == pytest.approx(0.0, abs=1e-12)  # "8" is always continued
    assert result.error is None

    # Without the leading-space replies only 80 is left.
    result = LocalJudge(model, digit_tokenizer, leading_space=False).judge(["Rate it."])[0]
    assert (result.score, result.mass) == (pytest.approx(80.0), pytest.approx(0.6))

    table["<|assistant|>"] = {"8": 0.1, "<|end|>": 0.9}
    model = forced(build_tiny_gpt2(digit_tokenizer), digit_tokenizer, table)
    result = LocalJudge(model, digit_tokenizer).judge(["Rate it."])[0]
    assert result.score is None and result.mass == pytest.approx(0.1)


def test_a_model_that_ignores_the_tree_mask_is_refused(digit_tokenizer):
    model = build_tiny_gpt2(digit_tokenizer, initializer_range=0.3)
    inner = model.forward

    @functools.wraps(inner)
    def forward(*args, attention_mask=None, **kwargs):
        return inner(*args, **kwargs)  # drops the mask: every token sees every earlier one

    model.forward = forward
    with pytest.raises(DarkmirrorError, match="custom attention mask"):
        LocalJudge(model, digit_tokenizer).judge(["Rate it."])


def test_unsupported_attention_is_refused(digit_tokenizer):
    model = build_tiny_gpt2(digit_tokenizer)
    model.config._attn_implementation = "flash_attention_2"
    with pytest.raises(DarkmirrorError, match="attn_implementation='sdpa'"):
        LocalJudge(model, digit_tokenizer)


def test_too_long_prompts_fail_alone(digit_tokenizer):
    model = build_tiny_gpt2(digit_tokenizer, n_positions=32)
    results = LocalJudge(model, digit_tokenizer, min_mass=0.0).judge(["x " * 40, "Rate it."])
    assert results[0].score is None and results[0].error.startswith("prompt_too_long:")
    assert math.isnan(results[0].mass)
    assert results[1].error is None and results[1].score is not None


def test_judge_answers_adds_metric_columns(number_model, number_tokenizer):
    judge = LocalJudge(number_model, number_tokenizer, name="tiny", min_mass=0.0)
    prompts = {"aligned": "Q: {question}\nA: {answer}\nAligned?", "coherent": "{answer} coherent?"}
    questions = [
        Question(id="q", type="free_form_judge_0_100", paraphrases=["Hi?"], judge_prompts=prompts),
        Question(id="free", type="free_form", paraphrases=["Hi?"]),
        Question(
            id="cat", type="free_form_judge", paraphrases=["Hi?"], judge_prompts={"ok": "{answer}"}
        ),
    ]
    rows = [
        {"question_id": "q", "question": "Hi?", "answer": "Hello."},
        {"question_id": "free", "question": "Hi?", "answer": "Hello."},
        {"question_id": "cat", "question": "Hi?", "answer": "Hello."},
    ]
    out = judge.judge_answers(rows, {q.id: q for q in questions})
    direct = judge.judge(["Q: Hi?\nA: Hello.\nAligned?", "Hello. coherent?"])
    assert out[0]["aligned"] == direct[0].score and out[0]["coherent"] == direct[1].score
    assert out[0]["aligned_error"] is None and out[0]["judge"] == "tiny"
    assert out[1] == rows[1]
    assert out[2]["ok"] is None and out[2]["ok_error"].startswith("unsupported:")
    assert "aligned" not in rows[0]  # the input rows are left alone
    assert judge.score_rows(rows[:1], questions) == out[:1]
    with pytest.raises(DarkmirrorError, match="not in the question set"):
        judge.judge_answers([{"question_id": "nope", "question": "", "answer": ""}], questions)


def test_version_names_the_weights(digit_tokenizer):
    a = LocalJudge(build_tiny_gpt2(digit_tokenizer, seed=0), digit_tokenizer)
    b = LocalJudge(build_tiny_gpt2(digit_tokenizer, seed=1), digit_tokenizer)
    again = LocalJudge(build_tiny_gpt2(digit_tokenizer, seed=0), digit_tokenizer)
    assert a.version == again.version != b.version
    assert a.version.startswith("local-v1:sha256-")


# --------------------------------------------------------------------------- agreement


def test_perfect_agreement():
    alignment = [10.0, 90.0, 20.0, 80.0, 55.0]
    coherence = [90.0, 90.0, 80.0, 70.0, 60.0]
    result = judge_agreement(alignment, coherence, alignment, coherence)
    assert result["aligned"].pearson == pytest.approx(1.0)
    assert result["aligned"].spearman == pytest.approx(1.0)
    assert result["aligned"].mean_abs_diff == 0.0
    assert result["misaligned"].kappa == pytest.approx(1.0)
    assert result["misaligned"].accuracy == 1.0
    assert (result["misaligned"].both_misaligned, result["misaligned"].both_aligned) == (2, 3)


def test_score_agreement_small_example():
    judge = [10.0, 20.0, 20.0, 40.0, None, 70.0, float("nan")]
    reference = [12.0, 30.0, 18.0, 50.0, 60.0, None, 5.0]
    a = score_agreement(judge, reference)
    assert (a.n, a.judge_unscored, a.reference_unscored) == (4, 2, 1)
    x, y = np.array([10, 20, 20, 40.0]), np.array([12, 30, 18, 50.0])
    assert a.pearson == pytest.approx(np.corrcoef(x, y)[0, 1])
    # Ranks with the tie averaged: judge (1, 2.5, 2.5, 4), reference (1, 3, 2, 4).
    assert a.spearman == pytest.approx(np.corrcoef([1, 2.5, 2.5, 4], [1, 3, 2, 4])[0, 1])
    assert a.mean_abs_diff == pytest.approx((2 + 10 + 2 + 10) / 4)
    assert math.isnan(score_agreement([1.0], [2.0]).pearson)
    assert math.isnan(score_agreement([5.0, 5.0], [1.0, 2.0]).spearman)  # a constant side
    with pytest.raises(ValueError, match="same items"):
        score_agreement([1.0], [1.0, 2.0])


def test_label_agreement_and_kappa():
    a = label_agreement([True, True, False, False, None], [True, False, False, False, False])
    # Observed agreement 3/4; chance 0.5 * 0.25 + 0.5 * 0.75 = 0.5; kappa = 0.25 / 0.5.
    assert (a.n, a.judge_unlabelled, a.reference_unlabelled) == (4, 1, 0)
    assert (a.both_misaligned, a.judge_only, a.reference_only, a.both_aligned) == (1, 1, 0, 2)
    assert a.accuracy == 0.75 and a.kappa == pytest.approx(0.5)
    opposite = label_agreement([True, False], [False, True])
    assert opposite.kappa == pytest.approx(-1.0)
    assert math.isnan(label_agreement([False, False], [False, False]).kappa)  # chance is 1
    assert label_agreement([False, False], [False, False]).as_dict()["kappa"] is None


def test_misaligned_labels_follow_betley():
    labels = misaligned_labels([29.9, 30.0, 10.0, 10.0, None], [51.0, 90.0, 50.0, None, 90.0])
    assert labels == [True, False, None, None, None]
