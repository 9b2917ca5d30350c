"""The one evaluation path: answers from any model, judged by any judge, scored by any scorer.

:func:`evaluate` is what the emergent-misalignment, persona and subliminal experiments, the
stress test and the canary call to turn a model and a question set into
:class:`~darkmirror.data.answers.AnswerRow` rows:

1. **answers**: sampled from the generator (a local model, vLLM, an endpoint), or, for an
   answers file, the recorded answers with the scores they hold;
2. **judge**: the judge adds ``aligned`` and ``coherent`` (and any metric of the question
   set's judge prompts) to every answer that does not already have them, and an optional
   reference judge adds its own (the world judge on the organism, to validate the first);
3. **scorers**: text scorers (toxicity) score every answer.

Each stage is also a function of its own (:func:`~darkmirror.eval.sampling.sample_answers`,
:func:`judge_answers`, :func:`score_answers`), so a run can make each a resumable step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from darkmirror.data.answers import AnswerRow, AnswerScore, ScoreRole
from darkmirror.data.questions import Question
from darkmirror.eval.sampling import sample_answers
from darkmirror.models.generation import Generator, SamplingParams
from darkmirror.score.judges import judge_rows
from darkmirror.score.judging import Judge
from darkmirror.score.scorer import Scorer

__all__ = ["RecordedAnswers", "evaluate", "judge_answers", "model_answers", "score_answers"]


@runtime_checkable
class RecordedAnswers(Protocol):
    """A generator whose answers already exist (an answers file): the evaluation takes its
    rows as they are, question ids, paraphrases and scores included."""

    def rows(self, questions: Mapping[str, Question] | None = None) -> list[AnswerRow[Any]]: ...


def model_answers(
    generator: Generator,
    questions: Sequence[Question],
    sampling: SamplingParams,
    *,
    model: str,
    samples_per_paraphrase: int | None = None,
    **row_fields: Any,
) -> list[AnswerRow[Any]]:
    """The model's answers to the questions: sampled, or recorded for an answers file.

    Args:
        generator: The model (a :class:`RecordedAnswers` is read, not sampled).
        questions: The question set.
        sampling: How to sample (ignored for recorded answers).
        model: The model's name in the rows.
        samples_per_paraphrase: Answers per paraphrase; None uses each question's own.
        **row_fields: ``group``, ``seed``, ``kind``, ``system``, ``question_temperature``,
            ``extension``, as :func:`~darkmirror.eval.sampling.sample_answers` takes them.
    """
    if isinstance(generator, RecordedAnswers):
        by_id = {q.id: q for q in questions} if questions else None
        # The arm and seed are the experiment's to say; the file says the rest.
        labels = {k: row_fields[k] for k in ("group", "seed") if k in row_fields}
        return [r.model_copy(update=labels) for r in generator.rows(by_id)]
    return sample_answers(
        generator,
        questions,
        sampling,
        model=model,
        samples_per_paraphrase=samples_per_paraphrase,
        **row_fields,
    )


def judge_answers(
    rows: Sequence[AnswerRow[Any]],
    questions: Sequence[Question] | Mapping[str, Question],
    judge: Judge | None,
    role: ScoreRole = "judge",
) -> list[AnswerRow[Any]]:
    """Add ``judge``'s verdicts (under ``role``) to the rows that lack them; rows that
    already carry a verdict of that role (an answer file's scores) keep it."""
    if judge is None:
        return list(rows)
    by_id = questions if isinstance(questions, Mapping) else {q.id: q for q in questions}
    return judge_rows(rows, by_id, judge, role)


def score_answers(
    rows: Sequence[AnswerRow[Any]], scorer: Scorer, metric: str = "toxicity"
) -> list[AnswerRow[Any]]:
    """Add a text scorer's score of every answer (a failure is missing with its reason)."""
    scores = scorer.score([r.answer for r in rows])
    return [
        row.with_scores(
            [
                AnswerScore(
                    metric=metric,
                    value=s.value,
                    source=scorer.name,
                    version=scorer.version,
                    role="scorer",
                    error=s.error,
                )
            ]
        )
        for row, s in zip(rows, scores, strict=True)
    ]


def evaluate(
    generator: Generator,
    questions: Sequence[Question],
    judge: Judge | None,
    sampling: SamplingParams,
    *,
    model: str,
    reference: Judge | None = None,
    scorers: Sequence[Scorer] = (),
    samples_per_paraphrase: int | None = None,
    **row_fields: Any,
) -> list[AnswerRow[Any]]:
    """A model's answers to a question set, judged and scored.

    Args:
        generator: The model, or an answers file.
        questions: The question set.
        judge: Labels every answer (None: leave them as they come).
        sampling: Temperature, nucleus, length and seed of the sampling.
        model: The model's name in the rows.
        reference: A second judge whose verdicts are recorded as ``reference`` scores.
        scorers: Text scorers (toxicity), each adding its metric.
        samples_per_paraphrase: Answers per paraphrase; None uses each question's own.
        **row_fields: See :func:`model_answers`.

    Returns:
        One row per answer.
    """
    rows = model_answers(
        generator,
        questions,
        sampling,
        model=model,
        samples_per_paraphrase=samples_per_paraphrase,
        **row_fields,
    )
    rows = judge_answers(rows, questions, judge)
    if reference is not None:
        rows = judge_answers(rows, questions, reference, "reference")
    for scorer in scorers:
        rows = score_answers(rows, scorer)
    return rows
