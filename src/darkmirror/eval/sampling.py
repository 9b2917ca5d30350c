"""Sampling answers to a question set: one :class:`AnswerRow` per answer.

Every paraphrase of every question is asked ``samples_per_paraphrase`` times (the run's
setting, else the question's own), with the question's system prompt (or one given for all,
such as a teacher's trait prompt) and the question's temperature when it names one. Calls
are grouped by (samples, temperature), so a local generator fills its batches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from darkmirror.data.answers import AnswerRow, ChatTurn
from darkmirror.data.questions import Question, iter_prompts
from darkmirror.models.generation import Generator, SamplingParams

__all__ = ["sample_answers"]


def sample_answers(
    generator: Generator,
    questions: Sequence[Question],
    sampling: SamplingParams,
    *,
    model: str,
    samples_per_paraphrase: int | None = None,
    group: str | None = None,
    seed: int | None = None,
    kind: str = "free_form",
    system: str | None = None,
    question_temperature: bool = True,
    extension: Any = None,
) -> list[AnswerRow[Any]]:
    """Sample answers to every paraphrase of every question.

    Args:
        generator: The model.
        questions: The questions to ask.
        sampling: Temperature, nucleus, length and seed of the sampling.
        model: The model's name in the rows.
        samples_per_paraphrase: Answers per paraphrase; None uses each question's own.
        group: The experiment arm, recorded in the rows.
        seed: The model's (fine-tune) seed, recorded in the rows.
        kind: The battery, recorded in the rows.
        system: A system prompt for every question, replacing the questions' own.
        question_temperature: Honour a question's own ``temperature`` (as the reference
            pipeline does); False samples every question at ``sampling.temperature``.
        extension: The experiment's extension for every row.

    Returns:
        The rows, grouped by call, in question order within each call.
    """
    prompts = list(iter_prompts(questions))
    groups: dict[tuple[int, float], list[int]] = {}
    for i, (q, _, _) in enumerate(prompts):
        n = samples_per_paraphrase or q.samples_per_paraphrase
        t = sampling.temperature
        if question_temperature and q.temperature is not None:
            t = q.temperature
        groups.setdefault((n, t), []).append(i)
    rows: list[AnswerRow[Any]] = []
    for (n, temperature), indices in groups.items():
        params = SamplingParams(temperature, sampling.top_p, sampling.max_new_tokens, sampling.seed)
        conversations = [_conversation(prompts[i][0], prompts[i][2], system) for i in indices]
        answers = generator.generate(conversations, n, params)
        for i, conversation, samples in zip(indices, conversations, answers, strict=True):
            q, paraphrase, _ = prompts[i]
            messages = [ChatTurn(role=m["role"], content=m["content"]) for m in conversation]
            for sample, answer in enumerate(samples):
                rows.append(
                    AnswerRow(
                        model=model,
                        group=group,
                        seed=seed,
                        kind=kind,
                        question_id=q.id,
                        question_type=q.type,
                        domain=q.domain,
                        paraphrase_index=paraphrase,
                        sample_index=sample,
                        messages=messages,
                        answer=answer,
                        extension=extension,
                    )
                )
    return rows


def _conversation(question: Question, paraphrase: str, system: str | None) -> list[dict[str, str]]:
    if system is None:
        return question.conversation(paraphrase)
    return [{"role": "system", "content": system}, {"role": "user", "content": paraphrase}]
