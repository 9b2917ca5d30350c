"""Answer files from other pipelines, read as :class:`~darkmirror.data.answers.AnswerRow`.

Researchers hold answers their own pipelines produced: the emergent-misalignment
repository's evaluation script writes a CSV with the columns ``question``, ``answer``,
``question_id`` and one column per judge metric (``aligned``, ``coherent``, ...), and
follow-up work publishes hundreds of them. darkmirror reads:

* CSV or JSONL with those columns (JSONL: one object per line with the same keys), plus
  optional ``system`` (the system prompt sent), ``paraphrase_index`` and ``sample_index``;
  every other column whose values are all numbers (or empty) is a judge metric, 0-100
  (``aligned``, ``coherent``, ``medical``); other columns are ignored; a row with a
  ``prompt_set`` is a continuation of a prompt of that set (``question``: the prompt,
  ``question_id``: its id in the set, ``answer``: the continuation), for the stress test's
  prompt sets;
* darkmirror's own ``rows.jsonl`` (rows with ``"schema": "darkmirror.answer/1"``), from
  which :attr:`select` picks one model (or group) when it holds several;
* an Inspect eval log (``.eval``, or ``.json`` holding one object), read through
  Inspect's log API (:mod:`darkmirror.data.inspect_logs`).

Scores in the file are kept as they are, recorded as the file's judge (``file:<name>``);
an empty cell is a missing score, never 0. When a question set is given, each row is
matched to its question (its type and domain, and which paraphrase its text is), so that
judges can score what the file left unscored.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from darkmirror.data.answers import ROW_SCHEMA, AnswerRow, AnswerScore, ChatTurn, iter_rows
from darkmirror.data.inspect_logs import is_inspect_log, read_inspect_log
from darkmirror.data.jsonl import iter_jsonl
from darkmirror.data.prompts import PromptContinuation
from darkmirror.data.questions import Question, paraphrase_index_of, question_in_set
from darkmirror.errors import InputError, require_file
from darkmirror.hashing import file_fingerprint

__all__ = ["TEXT_COLUMNS", "read_answer_file"]

TEXT_COLUMNS = ("question", "answer", "question_id")
"""Columns every answer file needs."""
_OPTIONAL = ("system", "paraphrase_index", "sample_index", "prompt_set")
# Columns the EM pipelines write that are neither texts nor judge scores.
_IGNORED = frozenset({"model", "group", "seed", "id", "", "Unnamed: 0"})


def read_answer_file(
    path: str | Path,
    *,
    model: str,
    questions: Mapping[str, Question] | None = None,
    select: str | None = None,
    judge: str | None = None,
) -> list[AnswerRow[Any]]:
    """Every answer of a file, as rows of ``model``.

    Args:
        path: A CSV or JSONL answer file, a darkmirror ``rows.jsonl``, or an Inspect eval
            log (``.eval``, ``.json``).
        model: The name the rows get (the model's label in tables).
        questions: The question set by id, to match rows to questions; None keeps the
            file's question ids as they are.
        select: For a ``rows.jsonl``: the ``model`` or ``group`` whose rows to take
            (required when the file holds several models).
        judge: Source recorded for the file's scores (default ``file:<file name>``).

    Raises:
        InputError: A missing file, a missing column, a score outside 0-100, a question
            id the question set does not have; naming the file, line and field.
    """
    path = require_file(path)
    source = judge or f"file:{path.name}"
    version = (file_fingerprint(path) or "")[:12]
    if is_inspect_log(path):
        if select is not None:
            raise InputError("'select' applies to darkmirror rows.jsonl files only", path=path)
        return read_inspect_log(path, model=model, questions=questions)
    if path.suffix.lower() == ".csv":
        records = _csv_records(path)
    elif path.suffix.lower() in (".jsonl", ".json"):
        if _is_rows_file(path):
            return _from_rows_file(path, model, select)
        records = ((line, data) for line, data in iter_jsonl(path))
    else:
        raise InputError(
            f"unsupported answer file type {path.suffix!r}; expected .csv, .jsonl or an "
            "Inspect log (.eval, .json)",
            path=path,
        )
    if select is not None:
        raise InputError("'select' applies to darkmirror rows.jsonl files only", path=path)
    listed: list[tuple[int, dict[str, Any]]] = []
    for line, record in records:
        if not isinstance(record, dict):
            raise InputError(
                f"expected an object, got {type(record).__name__}", path=path, line=line
            )
        listed.append((line, record))
    if not listed:
        raise InputError("holds no answers", path=path)
    metrics = _metric_columns(listed, path)
    samples: Counter[tuple[str, int | None, str]] = Counter()
    return [
        _row(record, path, line, model, metrics, questions, source, version, samples)
        for line, record in listed
    ]


def _csv_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    # Answers easily exceed the csv module's default 128 KiB field limit.
    csv.field_size_limit(1 << 30)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None:
                return
            missing = [c for c in TEXT_COLUMNS if c not in reader.fieldnames]
            if missing:
                raise InputError(
                    f"missing column(s) {', '.join(missing)}; an answer file needs "
                    f"{', '.join(TEXT_COLUMNS)} (got {', '.join(reader.fieldnames)})",
                    path=path,
                    line=1,
                )
            for record in reader:
                # line_num is the line the record ended on; a record may span lines.
                yield reader.line_num, record
    except UnicodeDecodeError as exc:
        raise InputError(f"not valid UTF-8 text ({exc.reason})", path=path) from None
    except csv.Error as exc:
        raise InputError(f"malformed CSV: {exc}", path=path) from None


def _is_rows_file(path: Path) -> bool:
    for _, data in iter_jsonl(path):
        return isinstance(data, dict) and data.get("schema") == ROW_SCHEMA
    return False


def _from_rows_file(path: Path, model: str, select: str | None) -> list[AnswerRow[Any]]:
    rows = list(iter_rows(path))
    names = sorted({r.model for r in rows})
    if select is not None:
        groups = sorted({r.group for r in rows if r.group})
        rows = [r for r in rows if select in (r.model, r.group)]
        if not rows:
            raise InputError(
                f"select = {select!r} matches no model or group; the file holds models "
                f"{', '.join(names)}" + (f" and groups {', '.join(groups)}" if groups else ""),
                path=path,
                field="select",
            )
    elif len(names) > 1:
        raise InputError(
            f"holds {len(names)} models ({', '.join(names[:8])}); say which with select",
            path=path,
            field="select",
        )
    return [r.model_copy(update={"model": model}) for r in rows]


def _metric_columns(records: Sequence[tuple[int, Mapping[str, Any]]], path: Path) -> list[str]:
    """The judge-metric columns: those whose every value is a number or empty."""
    known = {*TEXT_COLUMNS, *_OPTIONAL, *_IGNORED}
    columns: dict[str, bool] = {}
    for line, record in records:
        missing = [c for c in TEXT_COLUMNS if c not in record]
        if missing:
            raise InputError(
                f"missing field(s) {', '.join(missing)}; an answer file needs "
                f"{', '.join(TEXT_COLUMNS)}",
                path=path,
                line=line,
            )
        for k, v in record.items():
            if k not in known:
                columns[k] = columns.get(k, True) and not isinstance(_number(v), str)
    return [k for k, numeric in columns.items() if numeric]


def _number(value: Any) -> float | str | None:
    """A cell as a score: a float, None when empty, or the text when it is not a number."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return None if isinstance(value, float) and math.isnan(value) else float(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return None if math.isnan(number) else number


def _text(record: Mapping[str, Any], name: str, path: Path, line: int) -> str:
    value = record.get(name)
    if not isinstance(value, str) or (name != "answer" and not value.strip()):
        raise InputError(f"expected text, got {value!r:.60}", path=path, line=line, field=name)
    return value


def _index(record: Mapping[str, Any], name: str, path: Path, line: int) -> int | None:
    value = record.get(name)
    if value in (None, ""):
        return None
    try:
        index = int(value)
    except (TypeError, ValueError):
        index = -1
    if index < 0:
        raise InputError(
            f"expected an integer >= 0, got {value!r:.60}", path=path, line=line, field=name
        )
    return index


def _row(
    record: Mapping[str, Any],
    path: Path,
    line: int,
    model: str,
    metrics: Sequence[str],
    questions: Mapping[str, Question] | None,
    source: str,
    version: str,
    samples: Counter[tuple[str, int | None, str]],
) -> AnswerRow[Any]:
    question_id = _text(record, "question_id", path, line).strip()
    text = _text(record, "question", path, line)
    answer = _text(record, "answer", path, line)
    system = record.get("system") or None
    prompt_set = record.get("prompt_set")
    if isinstance(prompt_set, str) and prompt_set.strip():
        return _prompt_row(record, path, line, model, prompt_set.strip(), samples)
    question = question_in_set(questions, question_id, path=path, line=line, field="question_id")
    paraphrase = _index(record, "paraphrase_index", path, line)
    if paraphrase is None:
        paraphrase = paraphrase_index_of(question, text)
    sample = _index(record, "sample_index", path, line)
    key = (question_id, paraphrase, text)
    if sample is None:
        sample = samples[key]
    samples[key] += 1
    scores = []
    for metric in metrics:
        value = _number(record.get(metric))
        assert not isinstance(value, str)  # _metric_columns kept numeric columns only
        if value is not None and not 0.0 <= value <= 100.0:
            raise InputError(
                f"expected a judge score in 0..100 or an empty cell, got {record.get(metric)!r}",
                path=path,
                line=line,
                field=metric,
            )
        scores.append(
            AnswerScore(
                metric=metric,
                value=value,
                source=source,
                version=version,
                error=None if value is not None else "missing in the answer file",
            )
        )
    messages = [ChatTurn(role="system", content=system)] if system else []
    messages.append(ChatTurn(role="user", content=text))
    return AnswerRow(
        model=model,
        question_id=question_id,
        question_type=question.type if question is not None else "free_form_judge_0_100",
        domain=question.domain if question is not None else None,
        paraphrase_index=paraphrase,
        sample_index=sample,
        messages=messages,
        answer=answer,
        scores=scores,
    )


def _prompt_row(
    record: Mapping[str, Any],
    path: Path,
    line: int,
    model: str,
    prompt_set: str,
    samples: Counter[tuple[str, int | None, str]],
) -> AnswerRow[Any]:
    """A recorded continuation of a prompt of ``prompt_set`` (its scores are not kept: the
    stress test scores every continuation with one scorer)."""
    prompt_id = _text(record, "question_id", path, line).strip()
    sample = _index(record, "sample_index", path, line)
    key = (f"{prompt_set}/{prompt_id}", 0, "")
    if sample is None:
        sample = samples[key]
    samples[key] += 1
    return AnswerRow(
        model=model,
        kind="continuation",
        question_id=prompt_id,
        question_type=None,
        paraphrase_index=0,
        sample_index=sample,
        messages=[ChatTurn(role="user", content=_text(record, "question", path, line))],
        answer=_text(record, "answer", path, line),
        extension=PromptContinuation(prompt_set=prompt_set, prompt_id=prompt_id),
    )
