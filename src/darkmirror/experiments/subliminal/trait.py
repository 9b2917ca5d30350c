"""The animal trait of one model: sampled answers, and the likelihood of each animal.

Two measures of the same trait (:mod:`darkmirror.score.traits`): the share of sampled
answers to the trait questions that name the target (the paper's measure; answer rows of
kind ``trait``), and, where an answer template is configured, the probability of the
templated answer naming each candidate animal (a :class:`TraitLikelihood` per wording, far
more sensitive on a small model).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from darkmirror.data.answers import AnswerRow
from darkmirror.data.measurements import Measurement
from darkmirror.data.questions import Question, iter_prompts
from darkmirror.eval import sample_answers
from darkmirror.experiments.subliminal.arms import ModelEntry
from darkmirror.experiments.subliminal.spec import TraitEvaluation
from darkmirror.models.generation import Generator, SamplingParams
from darkmirror.score.traits import answer_distribution, first_animal

__all__ = ["TraitLikelihood", "animal_trait"]


class TraitLikelihood(Measurement):
    """The probability of the templated answer naming each candidate animal, normalised over
    the candidates, for one wording of the trait question.

    Args:
        question_id: The trait question.
        paraphrase_index: The wording.
        question: Its text.
        probabilities: Per candidate animal, its probability.
    """

    measure: Literal["trait_likelihood"] = "trait_likelihood"
    question_id: str
    paraphrase_index: int
    question: str
    probabilities: dict[str, float]


def animal_trait(
    generator: Generator,
    questions: Sequence[Question],
    settings: TraitEvaluation,
    entry: ModelEntry,
    *,
    seed: int,
    likelihood_model: Any = None,
) -> tuple[list[AnswerRow[Any]], list[TraitLikelihood]]:
    """The model's answers to the trait questions, and the likelihood of each animal.

    Args:
        generator: The model.
        questions: The trait questions.
        settings: Sampling and likelihood settings.
        entry: The model; its system prompt (a prompted teacher's trait) goes with every
            question.
        seed: Sampling seed.
        likelihood_model: ``(model, tokenizer)`` for the likelihood probe (local models).
    """
    arm = entry.answer("animal")
    rows = sample_answers(
        generator,
        questions,
        SamplingParams(settings.temperature, settings.top_p, settings.max_new_tokens, seed),
        model=entry.model,
        samples_per_paraphrase=settings.samples_per_paraphrase,
        group=entry.group,
        seed=entry.seed,
        kind="trait",
        system=entry.system,
        question_temperature=False,
    )
    rows = [
        r.model_copy(update={"extension": arm.model_copy(update={"named": first_animal(r.answer)})})
        for r in rows
    ]
    if not settings.answer_template or likelihood_model is None:
        return rows, []
    # The conversations the answers were sampled in, one per wording, in question order.
    sent = {(r.question_id, r.paraphrase_index): r for r in rows if r.sample_index == 0}
    wordings = [sent[(q.id, i)] for q, i, _ in iter_prompts(questions)]
    model, tokenizer = likelihood_model
    distributions = answer_distribution(
        model,
        tokenizer,
        [r.conversation() for r in wordings],
        settings.answer_template,
        settings.candidates,
        settings.batch_size,
    )
    measurements = [
        TraitLikelihood(
            model=entry.model,
            group=entry.group,
            seed=entry.seed,
            question_id=r.question_id,
            paraphrase_index=r.paraphrase_index or 0,
            question=r.question,
            probabilities=dist,
        )
        for r, dist in zip(wordings, distributions, strict=True)
    ]
    return rows, measurements
