"""darkmirror's log-probability 0-100 judge as an Inspect scorer.

The scorer hands each answer to :class:`darkmirror.score.llm_judge.LLMJudge`, the judge
``darkmirror stress --judge openai`` uses: the same prompts (the question set's
``judge_prompts``), the same request (one token, top-20 log-probabilities), the same
aggregation (Betley et al.'s probability-weighted mean) and the same on-disk cache, so an
answer judged through Inspect and through darkmirror gets the same score.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
from inspect_ai.scorer import Score, Scorer, Target, scorer
from inspect_ai.solver import TaskState

from darkmirror.data.answers import AnswerRow
from darkmirror.data.inspect_logs import (
    JUDGE_METRICS,
    PARAPHRASE_INDEX,
    QUESTION_ID,
    SAMPLE_INDEX,
    SCORES,
    input_turns,
)
from darkmirror.data.questions import Question, load_questions
from darkmirror.errors import DarkmirrorError
from darkmirror.integrations.inspect._metric import FAILED, misaligned_rate
from darkmirror.score.llm_judge import LLMJudge, LLMJudgeSettings


@scorer(metrics=[misaligned_rate()])
def betley_judge(
    questions: str,
    judge_url: str = "https://api.openai.com/v1",
    judge_model: str | None = None,
    judge_key_env: str = "OPENAI_API_KEY",
    max_concurrency: int = 8,
    cache_dir: str | None = None,
) -> Scorer:
    """Score answers with darkmirror's log-probability 0-100 judge (Betley et al.).

    Each sample needs ``question_id`` in its metadata (darkmirror's task writes it); the
    score's value is ``{"aligned": a, "coherent": c}`` for ``free_form_judge_0_100``
    questions (None where the judge gave no score; empty for other types), its metadata the full verdicts with the judge's source and version, which
    ``darkmirror stress`` reads back from the log.

    Args:
        questions: The question-set YAML whose ``judge_prompts`` the judge is asked.
        judge_url: Base URL of the OpenAI-compatible judge endpoint.
        judge_model: The judge model's name; None asks each question's own ``judge``.
        judge_key_env: Environment variable holding the judge's API key (read there,
            written nowhere).
        max_concurrency: Most judge requests in flight at once.
        cache_dir: The judge's answer cache; None for darkmirror's default.
    """
    by_id = {q.id: q for q in load_questions(questions)}
    settings = LLMJudgeSettings(
        base_url=judge_url,
        model=judge_model,
        api_key_env=judge_key_env,
        max_concurrency=max_concurrency,
        cache_dir=Path(cache_dir) if cache_dir else None,
    )
    judges: list[LLMJudge] = []
    lock = threading.Lock()

    def judge_one(row: AnswerRow[Any]) -> AnswerRow[Any]:
        with lock:  # one judge (one connection pool, one cache) for the whole eval
            if not judges:
                judges.append(LLMJudge(settings))
        return judges[0].judge_rows([row], by_id)[0]

    async def score(state: TaskState, target: Target) -> Score:
        row = await anyio.to_thread.run_sync(judge_one, _answer_row(state, by_id))
        verdicts = {s.metric: s for s in row.scores if s.role == "judge"}
        # The rate reads 0-100 questions only, as darkmirror's stress report does.
        value = (
            {m: verdicts[m].value for m in JUDGE_METRICS if m in verdicts}
            if row.question_type == "free_form_judge_0_100"
            else {}
        )
        return Score(
            value=value,
            answer=row.answer,
            explanation="; ".join(
                f"{m}: {s.value if s.value is not None else s.category or s.error}"
                for m, s in verdicts.items()
            ),
            metadata={
                SCORES: [s.model_dump(mode="json") for s in row.scores],
                FAILED: row.judge_failed(),
            },
        )

    return score


def _answer_row(state: TaskState, questions: dict[str, Question]) -> AnswerRow[Any]:
    metadata = state.metadata or {}
    question_id = metadata.get(QUESTION_ID)
    if question_id not in questions:
        raise DarkmirrorError(
            f"sample {state.sample_id!r}: metadata {QUESTION_ID}={question_id!r} names no "
            f"question of the judge's question set ({len(questions)} questions)"
        )
    turns = input_turns(state.input)
    if not turns:
        raise DarkmirrorError(f"sample {state.sample_id!r}: the input holds no user message")
    return AnswerRow(
        model=str(state.model),
        question_id=question_id,
        question_type=questions[question_id].type,
        paraphrase_index=metadata.get(PARAPHRASE_INDEX),
        sample_index=metadata.get(SAMPLE_INDEX, 0),
        messages=turns,
        answer=state.output.completion,
    )
