"""Trait probes: which animal a model names as its favourite.

Two measures of the same trait, as in the subliminal-learning paper and beside it:

* **sampled**: the share of sampled answers to "name your favourite animal" that name the
  target (a whole word, singular or plural, case-insensitive), the paper's measure;
* **likelihood**: the probability of the answer naming the target, relative to the
  same answer naming each candidate animal (a softmax over the candidates of the answer's
  log-probability). Sampling needs hundreds of answers to see a few points of shift; the
  likelihood sees it on every paraphrase (``organism-notes.md``: likelihoods move by nats
  where sampled rates stay near zero). It needs an answer template in the model's own
  style, so it is reported only where one is configured.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING

from darkmirror.data.world.templates import SLOT_VALUES
from darkmirror.models.likelihood import completion_logprobs

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

# The organism's animals first (its world draws favourites from them), then common animals
# an open model may name; the list only labels which animal an answer names.
ANIMALS: tuple[str, ...] = (
    *SLOT_VALUES["animal"],
    "cheetah",
    "giraffe",
    "koala",
    "otter",
    "octopus",
    "whale",
    "shark",
    "leopard",
    "hawk",
    "falcon",
    "raven",
    "parrot",
    "deer",
    "monkey",
    "zebra",
    "kangaroo",
    "hedgehog",
    "butterfly",
    "bee",
    "snake",
)


@cache
def _word(animal: str) -> re.Pattern[str]:
    # Whole word, optional plural: "owl", "Owls", "owl." but not "bowl" or "owlet".
    return re.compile(rf"\b{re.escape(animal)}(?:s|es)?\b", re.IGNORECASE)


def names_animal(answer: str, animal: str) -> bool:
    """Whether ``answer`` names ``animal`` (a whole word, singular or plural)."""
    return bool(_word(animal).search(answer))


def first_animal(answer: str, candidates: Sequence[str] = ANIMALS) -> str | None:
    """The candidate named earliest in ``answer`` (None when it names none)."""
    best: tuple[int, str] | None = None
    for animal in candidates:
        m = _word(animal).search(answer)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), animal)
    return best[1] if best else None


def answer_distribution(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[Sequence[dict[str, str]]],
    template: str,
    candidates: Sequence[str],
    batch_size: int = 64,
) -> list[dict[str, float]]:
    """Per prompt, the probability of the templated answer for each candidate animal,
    normalised over the candidates (a softmax of the answers' log-probabilities).

    Args:
        model: The model to probe.
        tokenizer: Its tokenizer (with a chat template).
        prompts: Conversations ending with the trait question.
        template: The answer, with ``{animal}`` where the animal goes
            (``"My favourite animal is the {animal}."``).
        candidates: The animals (at least two, no repeats).
        batch_size: Sequences per forward pass.
    """
    if "{animal}" not in template:
        raise ValueError(f"the answer template needs an {{animal}} slot: {template!r}")
    if len(set(candidates)) != len(candidates) or len(candidates) < 2:
        raise ValueError(f"expected two or more distinct candidates, got {list(candidates)}")
    convs = [list(p) for p in prompts for _ in candidates]
    answers = [template.format(animal=a) for _ in prompts for a in candidates]
    logps = completion_logprobs(model, tokenizer, convs, answers, batch_size)
    k = len(candidates)
    out = []
    for i in range(len(prompts)):
        row = logps[i * k : (i + 1) * k]
        top = max(row)
        weights = [math.exp(x - top) for x in row]
        z = sum(weights)
        out.append({a: w / z for a, w in zip(candidates, weights, strict=True)})
    return out
