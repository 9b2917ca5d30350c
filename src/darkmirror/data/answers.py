"""``AnswerRow``: one sampled answer with every score it received, the row of ``rows.jsonl``.

Every experiment, the stress test and the canary write their answers as these rows, and every
report reads them back; ``docs/rows.md`` gives the schema. A row says which model answered
which paraphrase of which question (and with which system prompt), what it answered, and
each judge's and scorer's verdict with the judge's name and version. A missing score is
``value = None`` with the reason in ``error``, never 0.

Fields that only one experiment needs (a code scan, the arm of a subliminal-learning run, a
steering intervention) live in ``extension``: a pydantic model of the experiment's own, with
a ``kind`` field. ``AnswerRow`` is generic in it: ``AnswerRow[CodeScan]`` validates the
extension as a ``CodeScan``; plain ``AnswerRow`` keeps whatever JSON object is there, so
that generic readers (answer files, the viewer) read any experiment's rows.

The schema is versioned (``schema = "darkmirror.answer/1"``); a reader refuses rows of a
schema it does not know instead of misreading them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from darkmirror.config_io import describe_validation_error
from darkmirror.data.jsonl import iter_jsonl, write_jsonl_atomic
from darkmirror.errors import InputError

__all__ = [
    "ROW_SCHEMA",
    "AnswerRow",
    "AnswerScore",
    "ChatTurn",
    "ScoreRole",
    "read_rows",
    "write_rows",
]

ROW_SCHEMA = "darkmirror.answer/1"
"""The schema of every row this version writes; bump it when a field changes meaning."""

ScoreRole = Literal["judge", "reference", "scorer"]
"""``judge``: the judge whose labels the metrics read; ``reference``: a second judge the first
is compared with (the world judge on the organism); ``scorer``: a text scorer (toxicity)."""

ExtT = TypeVar("ExtT")


class ChatTurn(BaseModel):
    """One message of the conversation the model was sent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class AnswerScore(BaseModel):
    """One judge's or scorer's verdict on one answer, for one metric.

    Args:
        metric: What is scored: ``aligned`` and ``coherent`` (0-100, the judge prompts of
            the question set), a category metric of a ``free_form_judge`` question,
            ``toxicity`` (0-1), ...
        value: The score; None when missing (see ``error``).
        category: The category, for category metrics (TRUE/FALSE/UNKNOWN, ...).
        source: The judge or scorer (``world``, ``gpt-4o-2024-08-06``, ``profanity_check``,
            ``file:answers.csv``).
        version: Its version, so scores of different judge versions are never pooled
            unknowingly.
        role: See :data:`ScoreRole`.
        error: Why the score is missing: the judge answered something else (``no_score:
            ...``) or the request failed (``http_503: ...``).
        failed: Whether the request failed, i.e. the judge never saw the answer (a failure
            is retried by the next run; the answer counts as unscored, never as incoherent).
        explanation: What the judge based its verdict on, where it says (the world judge's
            evidence).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str
    value: float | None = None
    category: str | None = None
    source: str
    version: str | None = None
    role: ScoreRole = "judge"
    error: str | None = None
    failed: bool = False
    explanation: str | None = None

    @property
    def missing(self) -> bool:
        """Whether there is neither a value nor a category."""
        return self.value is None and self.category is None


class AnswerRow(BaseModel, Generic[ExtT]):
    """One sampled answer and its scores.

    Args:
        schema_: Always :data:`ROW_SCHEMA` (written as ``schema``).
        model: The model's name in tables (``insecure-s0``, ``base``, an endpoint's model).
        group: The arm of the experiment the model belongs to (``insecure`` for every seed
            of the insecure fine-tune; ``model`` or ``baseline`` in a stress test).
        seed: The fine-tune's seed, or None for a model that was not trained here.
        kind: The battery the answer belongs to: ``free_form`` (the misalignment
            questions), ``self_report``, ``code``, ``trait``, ...
        question_id: The question's id in its question set.
        question_type: The question's type (``free_form_judge_0_100``, ...), when known.
        domain: The world domain the question probes, when known.
        paraphrase_index: Which paraphrase was asked (None when an answer file does not
            say and its text matches none).
        sample_index: Which of the answers to that paraphrase this is.
        messages: The conversation the model was sent, system prompt included, ending with
            the user turn it answered.
        answer: The model's reply.
        scores: Every verdict on the answer (:class:`AnswerScore`).
        extension: The experiment's own fields (a model with a ``kind``), or None.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["darkmirror.answer/1"] = Field(ROW_SCHEMA, alias="schema")
    model: str
    group: str | None = None
    seed: int | None = None
    kind: str = "free_form"
    question_id: str
    question_type: str | None = None
    domain: str | None = None
    paraphrase_index: int | None = Field(None, ge=0)
    sample_index: int = Field(0, ge=0)
    messages: list[ChatTurn] = Field(min_length=1)
    answer: str
    scores: list[AnswerScore] = Field(default_factory=list)
    extension: ExtT | None = None

    @model_validator(mode="after")
    def _ends_with_user(self) -> AnswerRow[ExtT]:
        if self.messages[-1].role != "user":
            raise ValueError("messages must end with the user turn the answer replies to")
        return self

    @property
    def question(self) -> str:
        """The user turn the model answered (the paraphrase asked)."""
        return self.messages[-1].content

    @property
    def system(self) -> str | None:
        """The system prompt sent with the question, if any."""
        return next((m.content for m in self.messages if m.role == "system"), None)

    def conversation(self) -> list[dict[str, str]]:
        """The messages as ``{"role", "content"}`` dicts, as generators take them."""
        return [{"role": m.role, "content": m.content} for m in self.messages]

    def score(self, metric: str, role: ScoreRole = "judge") -> AnswerScore | None:
        """The verdict for ``metric`` from the judge of ``role`` (the last one given)."""
        found = None
        for s in self.scores:
            if s.metric == metric and s.role == role:
                found = s
        return found

    def value(self, metric: str, role: ScoreRole = "judge") -> float | None:
        """The numeric score for ``metric`` (None when absent or missing)."""
        s = self.score(metric, role)
        return None if s is None else s.value

    def judge_failed(self, role: ScoreRole = "judge") -> bool:
        """Whether a request of the ``role`` judge on this answer failed."""
        return any(s.failed for s in self.scores if s.role == role)

    def with_scores(self, scores: Iterable[AnswerScore]) -> AnswerRow[ExtT]:
        """A copy with ``scores`` added; a new verdict replaces an earlier one for the same
        metric, role and source."""
        new = list(scores)
        replaced = {(s.metric, s.role, s.source) for s in new}
        kept = [s for s in self.scores if (s.metric, s.role, s.source) not in replaced]
        return self.model_copy(update={"scores": kept + new})

    def to_json(self) -> dict[str, Any]:
        """The row as JSON (``schema`` first, None fields kept so every row has every key)."""
        return self.model_dump(mode="json", by_alias=True)


def write_rows(path: Path, rows: Iterable[AnswerRow[Any]]) -> int:
    """Write rows to a JSONL file atomically; returns how many."""
    return write_jsonl_atomic(path, (row.to_json() for row in rows))


def read_rows(path: str | Path, row_type: type[AnswerRow[Any]] = AnswerRow) -> list[AnswerRow[Any]]:
    """Read a ``rows.jsonl`` file.

    Args:
        path: The file.
        row_type: The row model, e.g. ``AnswerRow[CodeScan | SelfReport]`` to validate
            the extensions too.

    Raises:
        InputError: A line that is not a row of a known schema, naming the line and field.
    """
    return list(iter_rows(path, row_type))


def iter_rows(
    path: str | Path, row_type: type[AnswerRow[Any]] = AnswerRow
) -> Iterator[AnswerRow[Any]]:
    """Stream the rows of a ``rows.jsonl`` file (see :func:`read_rows`)."""
    for line, data in iter_jsonl(Path(path)):
        if isinstance(data, dict) and data.get("schema") != ROW_SCHEMA:
            raise InputError(
                f"expected a darkmirror answer row (schema {ROW_SCHEMA!r}), "
                f"got schema {data.get('schema')!r}",
                path=path,
                line=line,
                field="schema",
            )
        try:
            yield row_type.model_validate(data)
        except ValidationError as exc:
            problem = describe_validation_error(exc, data, row_type)
            raise InputError(problem.message, path=path, line=line, field=problem.field) from None


def rows_of(rows: Sequence[AnswerRow[Any]], **where: Any) -> list[AnswerRow[Any]]:
    """The rows whose fields equal ``where`` (``rows_of(rows, kind="code", group="base")``)."""
    return [r for r in rows if all(getattr(r, k) == v for k, v in where.items())]
