"""The setting that names a judge in a spec, and the judge it builds.

A judge (:class:`~darkmirror.score.judging.Judge`) adds :class:`~darkmirror.data.answers.AnswerScore` verdicts to answer rows. Four
implement the protocol:

* the **world judge** (:class:`~darkmirror.score.world_judge.WorldJudge`): the organism's
  ground truth, for the world's questions;
* a **local judge** (:class:`~darkmirror.score.local_judge.LocalJudge`): any local causal
  LM, from its probabilities of every spelling of 0..100;
* an **OpenAI-compatible judge** (:class:`~darkmirror.score.llm_judge.LLMJudge`): one token
  with top-20 log-probabilities, cached on disk;
* **scores already in the file** (:class:`ScoresFromFile`): an answer file's own scores,
  with another judge for what it left unscored.

The local and API judges fill the question set's judge prompts (metric -> template) and
score every metric; the world judge scores ``aligned`` and ``coherent``. Whatever the judge,
the rows come back with the same metrics, so every report reads every judge's rows alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from darkmirror.data.answers import AnswerRow, ScoreRole
from darkmirror.data.questions import Question
from darkmirror.hashing import directory_fingerprint
from darkmirror.score.judging import Judge
from darkmirror.score.llm_judge import LLMJudge, LLMJudgeSettings
from darkmirror.score.world_judge import WorldJudge

__all__ = ["JudgeSpec", "ScoresFromFile", "build_judge", "judge_rows"]


class JudgeSpec(BaseModel):
    """Who labels the answers.

    Args:
        kind: ``"world"`` (the persona world's ground truth; organism questions only),
            ``"local"`` (a local causal LM) or ``"openai"`` (an OpenAI-compatible endpoint).
        model: For ``local``: a hub id or local directory. For ``openai``: the judge model's
            name (None: each question's own ``judge``).
        adapter: For ``local``: a PEFT adapter.
        endpoint: For ``openai``: the endpoint, key variable, concurrency, retries and
            cache (``LLMJudgeSettings`` without ``model``).
        batch_size: For ``local``: prompts per batch.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["world", "local", "openai"] = "world"
    model: str | None = None
    adapter: str | None = None
    endpoint: LLMJudgeSettings | None = None
    batch_size: int = Field(16, ge=1)

    @model_validator(mode="after")
    def _check(self) -> JudgeSpec:
        if self.kind == "local" and not self.model:
            raise ValueError("a local judge needs model (a hub id or a local directory)")
        if self.kind == "openai" and self.endpoint is None:
            raise ValueError("an openai judge needs endpoint (base_url, api_key_env, ...)")
        return self

    def identity(self) -> dict[str, Any]:
        """What the hashes of the steps that judge use."""
        data = self.model_dump(mode="json", exclude={"batch_size"})
        if data.get("endpoint"):
            data["endpoint"].pop("cache_dir", None)  # where answers are cached changes nothing
        data["files"] = directory_fingerprint(self.model, self.adapter)
        return data

    @property
    def display(self) -> str:
        """The judge in a report's sentence (``openai (gpt-4o)``)."""
        return self.kind + (f" ({self.model})" if self.model else "")


def build_judge(spec: JudgeSpec, *, progress: bool = False) -> Judge:
    """The judge a spec names (a local judge's model loads here)."""
    if spec.kind == "world":
        return WorldJudge()
    if spec.kind == "local":
        # Lazy: a local judge needs torch and transformers, which other judges do not.
        from darkmirror.score.local_judge import LocalJudge

        assert spec.model is not None
        return LocalJudge.load(
            spec.model, adapter=spec.adapter, batch_size=spec.batch_size, progress=progress
        )
    assert spec.endpoint is not None
    settings = spec.endpoint
    if spec.model:
        settings = settings.model_copy(update={"model": spec.model})
    return LLMJudge(settings, progress=progress)


def judge_rows(
    rows: Sequence[AnswerRow[Any]],
    questions: Mapping[str, Question],
    judge: Judge,
    role: ScoreRole = "judge",
) -> list[AnswerRow[Any]]:
    """``judge.judge_rows``, for rows that lack a ``role`` verdict only: rows that already
    carry one (an answer file's own scores) keep it (:class:`ScoresFromFile`)."""
    return ScoresFromFile(judge).judge_rows(rows, questions, role)


class ScoresFromFile:
    """An answer file's own scores, and another judge for the rows it left unscored.

    A row counts as scored when it has a verdict (value or category) of the role for every
    metric its question's judge prompts name (``aligned`` and ``coherent`` when the row's
    question is unknown); the others go to ``fallback``. A missing score the file holds is
    kept as missing when there is no fallback.

    Args:
        fallback: Judges what the file did not score; None leaves it unscored.
    """

    name = "file"
    version = "1"

    def __init__(self, fallback: Judge | None) -> None:
        self.fallback = fallback

    def judge_rows(
        self,
        rows: Sequence[AnswerRow[Any]],
        questions: Mapping[str, Question],
        role: ScoreRole = "judge",
    ) -> list[AnswerRow[Any]]:
        todo = self.unscored(rows, questions, role)
        if not todo or self.fallback is None:
            return list(rows)
        judged = self.fallback.judge_rows([rows[i] for i in todo], questions, role)
        out = list(rows)
        for i, row in zip(todo, judged, strict=True):
            out[i] = row
        return out

    @staticmethod
    def unscored(
        rows: Sequence[AnswerRow[Any]],
        questions: Mapping[str, Question],
        role: ScoreRole = "judge",
    ) -> list[int]:
        """Positions of the rows that lack a verdict of ``role`` (see the class docstring)."""
        return [i for i, r in enumerate(rows) if not _scored(r, questions, role)]

    def call_stats(self) -> dict[str, Any] | None:
        return self.fallback.call_stats() if self.fallback is not None else None

    def close(self) -> None:
        if self.fallback is not None:
            self.fallback.close()


def _scored(row: AnswerRow[Any], questions: Mapping[str, Question], role: ScoreRole) -> bool:
    question = questions.get(row.question_id)
    if question is not None and question.type == "free_form":
        return True
    metrics = list(question.judge_prompts) if question is not None else ["aligned", "coherent"]
    return all((s := row.score(m, role)) is not None and not s.missing for m in metrics)
