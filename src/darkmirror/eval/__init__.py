"""The evaluation core: a model and a question set in, judged :class:`AnswerRow` rows out."""

from darkmirror.eval.evaluate import (
    RecordedAnswers,
    evaluate,
    judge_answers,
    model_answers,
    score_answers,
)
from darkmirror.eval.sampling import sample_answers

__all__ = [
    "RecordedAnswers",
    "evaluate",
    "judge_answers",
    "model_answers",
    "sample_answers",
    "score_answers",
]
