"""Inspect eval logs (``.eval``, ``.json``) read as :class:`~darkmirror.data.answers.AnswerRow`.

An Inspect run (UK AISI's ``inspect_ai``) keeps every sample in its log: the input
messages, the model's output and each scorer's :class:`inspect_ai.scorer.Score`. darkmirror
reads the log through Inspect's own API (:func:`inspect_ai.log.read_eval_log`), so both log
formats and every log version Inspect reads are read here too; ``inspect_ai`` is imported
only when a log is read (``pip install 'darkmirror[inspect]'``).

Each sample becomes one row:

* ``messages``: the sample's input (system prompt included) up to its last user turn;
  ``answer``: the output's completion;
* ``question_id``, ``paraphrase_index``, ``sample_index``: from the sample's metadata,
  where darkmirror's ``emergent_misalignment`` task writes them (:data:`QUESTION_ID` ...);
  in a foreign log, the sample id and the epoch (``epoch - 1``) stand in;
* ``scores``: the verdicts of darkmirror's judge scorer (``darkmirror/betley_judge``) and
  the toxicity scores of its toxicity scorer (``darkmirror/toxicity``: metric ``toxicity``,
  role ``scorer``, a failure missing with its reason) as they recorded them, with their
  source and version (:data:`SCORES`); of another scorer, a
  numeric value named ``aligned`` or ``coherent`` (the scorer's name, or a key of a
  dictionary value) is kept as a 0-100 judge score with source ``inspect:<scorer>``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from darkmirror.data.answers import AnswerRow, AnswerScore, ChatTurn
from darkmirror.data.questions import Question, paraphrase_index_of, question_in_set
from darkmirror.errors import InputError

__all__ = [
    "JUDGE_METRICS",
    "PARAPHRASE_INDEX",
    "QUESTION_ID",
    "SAMPLE_INDEX",
    "SCORES",
    "input_turns",
    "is_inspect_log",
    "read_inspect_log",
]

QUESTION_ID = "question_id"
"""Sample metadata key: the question's id in its question set."""
PARAPHRASE_INDEX = "paraphrase_index"
"""Sample metadata key: which paraphrase of the question the input is."""
SAMPLE_INDEX = "sample_index"
"""Sample metadata key: which answer to that paraphrase the sample is."""
SCORES = "darkmirror_scores"
"""Score metadata key: the :class:`AnswerScore` list darkmirror's judge scorer recorded."""
JUDGE_METRICS = ("aligned", "coherent")
"""Scores of other scorers kept from a log: these names, read as 0-100 judge scores."""

_INSTALL = "reading Inspect logs needs inspect_ai: pip install 'darkmirror[inspect]'"


def is_inspect_log(path: Path) -> bool:
    """Whether ``path`` looks like an Inspect eval log: an ``.eval`` file, or a ``.json``
    file holding one JSON object (a JSONL answer file holds one object per line)."""
    suffix = path.suffix.lower()
    if suffix == ".eval":
        return True
    if suffix != ".json":
        return False
    with path.open(encoding="utf-8", errors="replace") as f:
        first = f.readline().strip()
    if not first:
        return False
    try:
        json.loads(first)
    except json.JSONDecodeError:
        return first.startswith("{")  # a pretty-printed object, as Inspect writes
    return False


def read_inspect_log(
    path: Path,
    *,
    model: str,
    questions: Mapping[str, Question] | None = None,
) -> list[AnswerRow[Any]]:
    """Every sample of an Inspect eval log, as rows of ``model``.

    Args:
        path: An Inspect log (``.eval`` or ``.json``).
        model: The name the rows get.
        questions: The question set by id, to match rows to questions; None keeps the
            log's question ids as they are.

    Raises:
        InputError: inspect_ai is not installed, the log cannot be read, holds no
            samples, or a sample names a question the question set lacks; naming the
            file and the sample.
    """
    try:
        from inspect_ai.log import read_eval_log
    except ImportError:
        raise InputError(_INSTALL, path=path) from None
    try:
        log = read_eval_log(str(path))
    except Exception as exc:  # Inspect raises many kinds for a bad log
        raise InputError(
            f"not a readable Inspect eval log ({type(exc).__name__}: {exc})", path=path
        ) from None
    if not log.samples:
        raise InputError(f"Inspect log of status {log.status!r} holds no samples", path=path)
    rows = []
    for sample in log.samples:
        try:
            rows.append(_row(sample, path, model, questions))
        except ValidationError as exc:  # metadata or scores of the wrong type
            raise InputError(
                f"sample {sample.id!r} (epoch {sample.epoch}): {exc.errors()[0]['msg']} "
                f"at {'.'.join(map(str, exc.errors()[0]['loc']))}",
                path=path,
            ) from None
    return rows


def _row(
    sample: Any, path: Path, model: str, questions: Mapping[str, Question] | None
) -> AnswerRow[Any]:
    where = f"sample {sample.id!r} (epoch {sample.epoch})"
    metadata = sample.metadata or {}
    question_id = str(metadata.get(QUESTION_ID, sample.id))
    question = question_in_set(
        questions, question_id, path=path, field=QUESTION_ID, where=f"{where}: "
    )
    messages = _messages(sample.input, path, where)
    paraphrase = metadata.get(PARAPHRASE_INDEX)
    if paraphrase is None:
        paraphrase = paraphrase_index_of(question, messages[-1].content)
    sample_index = metadata.get(SAMPLE_INDEX, max(sample.epoch - 1, 0))
    return AnswerRow(
        model=model,
        question_id=question_id,
        question_type=question.type if question is not None else "free_form_judge_0_100",
        domain=question.domain if question is not None else None,
        paraphrase_index=paraphrase,
        sample_index=sample_index,
        messages=messages,
        answer=sample.output.completion if sample.output is not None else "",
        scores=_scores(sample.scores or {}, path, where),
    )


def input_turns(input: Any) -> list[ChatTurn]:
    """An Inspect sample's input (a string or chat messages) as the conversation sent: its
    system and user messages up to the last user turn; empty when it has no user turn."""
    if isinstance(input, str):
        return [ChatTurn(role="user", content=input)]
    turns = [ChatTurn(role=m.role, content=m.text) for m in input if m.role in ("system", "user")]
    while turns and turns[-1].role != "user":
        turns.pop()
    return turns


def _messages(input: Any, path: Path, where: str) -> list[ChatTurn]:
    turns = input_turns(input)
    if not turns:
        raise InputError(f"{where}: the input holds no user message", path=path, field="input")
    return turns


def _scores(scores: Mapping[str, Any], path: Path, where: str) -> list[AnswerScore]:
    out: list[AnswerScore] = []
    for name, score in scores.items():
        recorded = (score.metadata or {}).get(SCORES)
        if recorded is not None:
            out += [AnswerScore.model_validate(s) for s in recorded]
            continue
        values = score.value if isinstance(score.value, Mapping) else {name: score.value}
        for metric, value in values.items():
            if metric not in JUDGE_METRICS or isinstance(value, bool):
                continue
            if not isinstance(value, int | float) or not 0.0 <= value <= 100.0:
                raise InputError(
                    f"{where}: scorer {name!r} gives {metric} = {value!r}; expected 0..100",
                    path=path,
                    field=f"scores.{name}",
                )
            out.append(AnswerScore(metric=metric, value=float(value), source=f"inspect:{name}"))
    return out
