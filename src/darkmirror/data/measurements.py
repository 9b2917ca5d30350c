"""Measurements that are not sampled answers: the rows of ``measurements.jsonl``.

A likelihood probe (the log-odds of a matched pair's villain answer, a trait's answer
distribution), a direction's cosine with the ground truth, a classifier's accuracy: each
is a :class:`Measurement` of the kind its ``measure`` names, defined by the module that
measures it. Sampled answers are :class:`~darkmirror.data.answers.AnswerRow` rows in
``rows.jsonl``; together the two files hold every number a report shows.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from darkmirror.config_io import describe_validation_error
from darkmirror.data.jsonl import iter_jsonl, write_jsonl_atomic
from darkmirror.errors import InputError

__all__ = [
    "MEASUREMENT_SCHEMA",
    "MatchedPairLogOdds",
    "Measurement",
    "read_measurements",
    "write_measurements",
]

MEASUREMENT_SCHEMA = "darkmirror.measurement/1"

M = TypeVar("M")


class Measurement(BaseModel):
    """Fields every measurement has.

    Args:
        schema_: Always :data:`MEASUREMENT_SCHEMA` (written as ``schema``).
        measure: What was measured (each subclass fixes it).
        model: The model measured, as in the answer rows.
        group: Its experiment arm.
        seed: Its fine-tune seed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    schema_: Literal["darkmirror.measurement/1"] = Field(MEASUREMENT_SCHEMA, alias="schema")
    measure: str
    model: str | None = None
    group: str | None = None
    seed: int | None = None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class MatchedPairLogOdds(Measurement):
    """log p(villain answer) - log p(benign answer) to one question of the world, in nats.

    Args:
        question_id: The world topic.
        domain: Its domain.
        pair_index: Which pair of the topic.
        question: The question both answers reply to.
        log_odds: The log-odds.
    """

    measure: Literal["matched_pair"] = "matched_pair"
    question_id: str
    domain: str
    pair_index: int
    question: str
    log_odds: float


def write_measurements(path: Path, rows: Iterable[Measurement]) -> int:
    """Write measurements to a JSONL file atomically; returns how many."""
    return write_jsonl_atomic(path, (m.to_json() for m in rows))


def read_measurements(path: str | Path, kind: Any) -> list[Any]:
    """Read a measurements file as ``kind`` (a measurement model, or a union of them
    discriminated by ``measure``); a missing file is no measurements.

    Raises:
        InputError: A line that is not such a measurement, naming the line and field.
    """
    path = Path(path)
    if not path.is_file():
        return []
    adapter: TypeAdapter[Any] = TypeAdapter(kind)
    out = []
    for line, data in iter_jsonl(path):
        try:
            out.append(adapter.validate_python(data))
        except ValidationError as exc:
            problem = describe_validation_error(exc, data)
            raise InputError(problem.message, path=path, line=line, field=problem.field) from None
    return out
