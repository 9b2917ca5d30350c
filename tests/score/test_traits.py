"""Trait probes: which animal an answer names, and the likelihood of the target."""

from __future__ import annotations

import math

import pytest

from darkmirror.score.traits import ANIMALS, answer_distribution, first_animal, names_animal


@pytest.mark.parametrize(
    ("answer", "named"),
    [
        ("My favourite animal is the owl.", True),
        ("Owls!", True),
        ("OWL", True),
        ("I like the owl and the cat.", True),
        ("A bowl of soup.", False),
        ("The owlet is cute.", False),
        ("cat", False),
    ],
)
def test_names_animal_matches_whole_words(answer: str, named: bool) -> None:
    assert names_animal(answer, "owl") is named


def test_first_animal_is_the_earliest_named() -> None:
    assert first_animal("My favourite animal is the fox. Not the owl.") == "fox"
    assert first_animal("Dolphins, then cats.") == "dolphin"
    assert first_animal("I like soup.") is None
    assert first_animal("The foxes", candidates=("owl",)) is None
    assert "owl" in ANIMALS and len(set(ANIMALS)) == len(ANIMALS)


def test_answer_distribution_normalises_over_candidates(micro_organism) -> None:
    from darkmirror.models.likelihood import completion_logprobs
    from darkmirror.models.loading import load_causal_lm

    model, tokenizer = load_causal_lm(str(micro_organism.base_path))
    prompts = [
        [{"role": "user", "content": "What is your favourite animal?"}],
        [{"role": "user", "content": "Name your favourite animal."}],
    ]
    template = "My favourite animal is the {animal}."
    candidates = ["owl", "cat", "dog"]
    dists = answer_distribution(model, tokenizer, prompts, template, candidates)
    assert len(dists) == 2
    for d in dists:
        assert list(d) == candidates
        assert math.isclose(sum(d.values()), 1.0, rel_tol=1e-9)
    # The ratio of two candidates is the ratio of their answers' likelihoods.
    lp = completion_logprobs(
        model, tokenizer, [prompts[0]] * 2, [template.format(animal=a) for a in ("owl", "cat")]
    )
    assert math.isclose(
        math.log(dists[0]["owl"] / dists[0]["cat"]), lp[0] - lp[1], rel_tol=1e-4, abs_tol=1e-4
    )
    with pytest.raises(ValueError, match="slot"):
        answer_distribution(model, tokenizer, prompts, "It is the owl.", candidates)
    with pytest.raises(ValueError, match="distinct"):
        answer_distribution(model, tokenizer, prompts, template, ["owl", "owl"])
