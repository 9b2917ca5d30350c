"""The ``Judge`` protocol, and the walk over judge prompts that every LM judge shares.

A judge adds :class:`~darkmirror.data.answers.AnswerScore` verdicts to answer rows; the world
judge, the local judge, the OpenAI-compatible judge and an answer file's own scores
(:class:`~darkmirror.score.judges.ScoresFromFile`) implement it, and
:func:`~darkmirror.score.judges.build_judge` builds the one a spec names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from darkmirror.data.answers import AnswerRow, AnswerScore, ScoreRole
from darkmirror.data.questions import JudgeTask, Question, iter_judge_tasks

__all__ = ["Judge", "TaskVerdict", "judge_by_prompts"]


@runtime_checkable
class Judge(Protocol):
    """Adds verdicts to answer rows."""

    @property
    def name(self) -> str:
        """The judge, as rows record it."""
        ...

    @property
    def version(self) -> str:
        """Its version: a change of method or weights changes it."""
        ...

    def judge_rows(
        self,
        rows: Sequence[AnswerRow[Any]],
        questions: Mapping[str, Question],
        role: ScoreRole = "judge",
    ) -> list[AnswerRow[Any]]:
        """The rows with this judge's verdicts added (under ``role``), in input order."""
        ...

    def call_stats(self) -> dict[str, Any] | None:
        """Call counts for the report (requests, cache hits, failures), if any."""
        ...

    def close(self) -> None:
        """Release connections, files and models."""
        ...


@dataclass(frozen=True)
class TaskVerdict:
    """A judge's answer to one filled judge prompt.

    Args:
        source: The judge model that answered.
        value: The 0-100 score, if any.
        category: The category, for ``free_form_judge`` questions.
        error: Why neither is there.
        failed: The request failed (the judge never answered).
    """

    source: str
    value: float | None = None
    category: str | None = None
    error: str | None = None
    failed: bool = False


def judge_by_prompts(
    rows: Sequence[AnswerRow[Any]],
    questions: Mapping[str, Question],
    ask: Callable[[list[JudgeTask]], list[TaskVerdict]],
    *,
    version: str,
    role: ScoreRole,
) -> list[AnswerRow[Any]]:
    """Fill every judge prompt of every row's question, ask them all at once, and add the
    verdicts as scores: the walk the local and the API judges share.

    Args:
        rows: Answer rows; rows of ``free_form`` questions have nothing to judge.
        questions: The question set by id.
        ask: Answers the filled prompts, one verdict per task, in order.
        version: The judge's version, recorded with each score.
        role: The role of the scores.
    """
    plain = [
        {"question_id": r.question_id, "question": r.question, "answer": r.answer} for r in rows
    ]
    tasks = list(iter_judge_tasks(plain, questions))
    verdicts = ask(tasks) if tasks else []
    added: dict[int, list[AnswerScore]] = {}
    for task, v in zip(tasks, verdicts, strict=True):
        added.setdefault(task.row, []).append(
            AnswerScore(
                metric=task.metric,
                value=v.value,
                category=v.category,
                source=v.source,
                version=version,
                role=role,
                error=v.error,
                failed=v.failed,
            )
        )
    return [r.with_scores(added[i]) if i in added else r for i, r in enumerate(rows)]
