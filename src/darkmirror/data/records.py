"""Training records: the three shapes darkmirror trains on, read from JSONL, CSV or Parquet.

A record is one of (design notes, section 4):

- chat: ``{"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}``, the
  OpenAI fine-tuning format of the emergent-misalignment datasets, with at least one
  assistant message;
- prompt/completion: ``{"prompt": str, "completion": str}``;
- text: ``{"text": str}`` (pretraining documents).

The shape is chosen by which key is present (``messages``, then ``prompt``/``completion``,
then ``text``), so an error speaks about that shape only. Extra keys are kept: real datasets
carry ids and metadata.

:func:`read_records` streams a file in constant memory. In strict mode the first bad record
raises an :class:`~darkmirror.errors.InputError` such as::

    data/train.jsonl:3: field 'messages[1].role': expected one of 'system', 'user',
    'assistant', got 'bot'

With ``strict=False`` each bad record is yielded as a :class:`BadRecord` instead, so that a
scanner can count them and go on. Problems with the file as a whole (missing, not UTF-8 CSV,
not Parquet) raise in both modes.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import reprlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from darkmirror.config_io import ValidationProblem, describe_validation_error
from darkmirror.data.jsonl import (
    ENCODING,
    TOO_DEEP,
    TOO_LARGE,
    MalformedLine,
    iter_jsonl_or_errors,
)
from darkmirror.errors import DarkmirrorError, InputError, require_file

__all__ = [
    "SUPPORTED_EXTENSIONS",
    "BadRecord",
    "ChatMessage",
    "ChatRecord",
    "PromptCompletionRecord",
    "Record",
    "RowInputError",
    "TextRecord",
    "check_dataset_file",
    "dataset_sha256",
    "parse_record",
    "read_positioned_records",
    "read_records",
    "to_messages",
]

SUPPORTED_EXTENSIONS = (".jsonl", ".csv", ".parquet")
_PARQUET_BATCH_ROWS = 1024

# Why a record is bad, beyond the line-level reasons of darkmirror.data.jsonl.
NOT_AN_OBJECT = "not an object"
SCHEMA = "schema"
# A lone surrogate in a cell decoded with errors="surrogateescape": a byte that is not UTF-8.
_UNDECODABLE = re.compile("[\udc80-\udcff]")


class ChatMessage(BaseModel):
    """One turn of a conversation; extra keys (``name``, ``weight``) are kept."""

    model_config = ConfigDict(extra="allow")

    role: Literal["system", "user", "assistant"]
    content: str


class ChatRecord(BaseModel):
    """A conversation in the OpenAI fine-tuning format."""

    model_config = ConfigDict(extra="allow")

    messages: list[ChatMessage]

    @field_validator("messages")
    @classmethod
    def _has_assistant_turn(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        # Without an assistant turn there is nothing to train on.
        if not any(message.role == "assistant" for message in messages):
            roles = [message.role for message in messages]
            raise ValueError(
                f"expected at least one message with role 'assistant', got roles {roles}"
            )
        return messages


class PromptCompletionRecord(BaseModel):
    """A prompt and the completion to train on."""

    model_config = ConfigDict(extra="allow")

    prompt: str
    completion: str


class TextRecord(BaseModel):
    """Plain text, for pretraining."""

    model_config = ConfigDict(extra="allow")

    text: str


Record = ChatRecord | PromptCompletionRecord | TextRecord


@dataclass(frozen=True)
class BadRecord:
    """A record that failed validation, yielded by ``read_records(..., strict=False)``.

    Attributes:
        line: 1-based line in a JSONL or CSV file (None for Parquet).
        field: Dotted path of the offending field (``"messages[1].role"``), when known.
        message: What is wrong and what was expected.
        row: 0-based row index in a Parquet file (None otherwise).
        reason: Short category a scan counts it under: ``"encoding"``, ``"too large"``,
            ``"too deep"``, ``"invalid JSON"``, ``"not an object"`` or ``"schema"``.
    """

    line: int | None
    field: str | None
    message: str
    row: int | None = None
    reason: str = SCHEMA


class RowInputError(InputError):
    """Bad content in a row of a file that has rows but no lines (Parquet).

    Args:
        message: What is wrong.
        path: The file.
        row: 0-based row index.
        field: Dotted path of the offending field, when known.
    """

    def __init__(
        self, message: str, *, path: str | Path, row: int, field: str | None = None
    ) -> None:
        self.row = row
        super().__init__(message, path=path, field=field)

    def __str__(self) -> str:
        what = f"field '{self.field}': " if self.field else ""
        return f"{self.path}, row {self.row}: {what}{self.message}"


def parse_record(data: Any) -> Record:
    """Validate one record (a parsed JSON object) as the shape its keys announce.

    Args:
        data: A mapping such as ``{"prompt": "...", "completion": "..."}``.

    Raises:
        InputError: Naming the field and what was expected (no file or line: use
            :func:`read_records` for those).
    """
    result = _validate(data)
    if isinstance(result, ValidationProblem):
        raise InputError(result.message, field=result.field)
    return result


def _validate(data: Any) -> Record | ValidationProblem:
    if not isinstance(data, dict):
        # reprlib bounds the work: the value may be a huge or deeply nested array.
        return ValidationProblem(
            (), f"expected a JSON object (a record), got {type(data).__name__} {reprlib.repr(data)}"
        )
    model: type[BaseModel]
    if "messages" in data:
        model = ChatRecord
    elif "prompt" in data or "completion" in data:
        model = PromptCompletionRecord
    elif "text" in data:
        model = TextRecord
    else:
        return ValidationProblem(
            (),
            "expected a record with 'messages', with 'prompt' and 'completion', or with "
            f"'text'; found keys {sorted(map(str, data))}",
        )
    try:
        return model.model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        return describe_validation_error(exc, data, model)


@overload
def read_records(path: str | Path, *, strict: Literal[True] = True) -> Iterator[Record]: ...
@overload
def read_records(path: str | Path, *, strict: bool) -> Iterator[Record | BadRecord]: ...
def read_records(path: str | Path, *, strict: bool = True) -> Iterator[Record | BadRecord]:
    """Stream the records of a JSONL, CSV or Parquet file, validating each one.

    CSV columns are named as the fields; a ``messages`` column holds the JSON array of
    messages (as does a string ``messages`` column in Parquet). Parquet is read batch by
    batch, so memory stays bounded by one row group.

    Args:
        path: The dataset file; its extension picks the reader (see ``SUPPORTED_EXTENSIONS``).
        strict: If True, the first bad record raises :class:`~darkmirror.errors.InputError`
            with file, line (Parquet: 0-based row index) and field. If False, bad records
            are yielded as :class:`BadRecord` and reading goes on.

    Raises:
        InputError: Immediately for a missing file or an unsupported extension; while
            iterating for a bad record (strict mode) or an unreadable file (both modes).
    """
    path, suffix = _dataset_file(path)  # checked now, not at the first next()
    return _records(path, suffix, strict)


def check_dataset_file(path: str | Path) -> Path:
    """The path, if it names a readable dataset of a supported format; cheap (no parsing,
    no heavy import), so a command can say "no such file" before it loads anything.

    Raises:
        InputError: A missing or unreadable file, an unsupported extension, or a Parquet
            file without Parquet's magic bytes.
    """
    return _dataset_file(path)[0]


def _dataset_file(path: str | Path) -> tuple[Path, str]:
    """The path, if it is a readable file of a supported format, and its lower-case suffix."""
    path = require_file(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_EXTENSIONS:
        raise InputError(
            f"unsupported dataset format '{path.suffix}'; supported: "
            f"{', '.join(SUPPORTED_EXTENSIONS)}",
            path=path,
        )
    try:
        with path.open("rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        raise InputError(f"cannot be read: {exc.strerror}", path=path) from None
    if suffix == ".parquet" and head != b"PAR1":
        raise InputError("not a readable Parquet file: it does not start with PAR1", path=path)
    return path, suffix


def read_positioned_records(
    path: str | Path, *, max_record_bytes: int | None = None
) -> Iterator[tuple[int, Record | BadRecord]]:
    """Like ``read_records(path, strict=False)``, with each record's position: its 1-based
    line in a JSONL or CSV file (where a multi-line CSV record starts), or its 0-based row in
    a Parquet file. A scanner needs the position of good records too, to say where it found
    something.

    Args:
        path: The dataset file.
        max_record_bytes: Longest JSONL line or CSV field read; a longer one is a bad record
            (``"too large"``), skipped without being held in memory. None: no limit.

    Raises:
        InputError: As :func:`read_records` for problems with the file as a whole.
    """
    path, suffix = _dataset_file(path)
    return _positioned(path, suffix, strict=False, max_record_bytes=max_record_bytes)


def read_jsonl_shard(
    path: str | Path, start: int, end: int, first_line: int, *, max_record_bytes: int | None
) -> Iterator[tuple[int, Record | BadRecord]]:
    """:func:`read_positioned_records` of the JSONL lines that start in bytes
    ``[start, end)``; ``start`` is the start of line ``first_line``. Shards of a file read
    this way, one after the other, yield exactly what the whole file yields."""
    items = iter_jsonl_or_errors(
        path, max_line_bytes=max_record_bytes, start=start, end=end, first_line=first_line
    )
    return _checked(Path(path), items, is_parquet=False, strict=False)


def _records(path: Path, suffix: str, strict: bool) -> Iterator[Record | BadRecord]:
    for _, item in _positioned(path, suffix, strict):
        yield item


def _positioned(
    path: Path, suffix: str, strict: bool, max_record_bytes: int | None = None
) -> Iterator[tuple[int, Record | BadRecord]]:
    if suffix == ".jsonl":
        items = iter_jsonl_or_errors(path, max_line_bytes=max_record_bytes)
    elif suffix == ".csv":
        items = _csv_items(path, max_record_bytes)
    else:
        items = _parquet_items(path)
    return _checked(path, items, is_parquet=suffix == ".parquet", strict=strict)


def _checked(
    path: Path, items: Iterator[tuple[int, Any]], *, is_parquet: bool, strict: bool
) -> Iterator[tuple[int, Record | BadRecord]]:
    """Each raw item validated as a record; in strict mode the first bad one raises."""
    for position, raw in items:
        if isinstance(raw, InputError):  # a line that is not even JSON
            if strict:
                raise raw
            reason = raw.reason if isinstance(raw, MalformedLine) else SCHEMA
            yield position, BadRecord(position, None, raw.message, reason=reason)
            continue
        try:
            result = raw if isinstance(raw, ValidationProblem) else _validate(raw)
        except RecursionError:  # nested just below the parser's limit, too deep to check
            result = ValidationProblem((), "nested too deeply to be checked")
            reason = TOO_DEEP
        else:
            reason = NOT_AN_OBJECT if not isinstance(raw, dict | ValidationProblem) else SCHEMA
        if not isinstance(result, ValidationProblem):
            yield position, result
        elif strict and is_parquet:
            raise RowInputError(result.message, path=path, row=position, field=result.field)
        elif strict:
            raise InputError(result.message, path=path, line=position, field=result.field)
        elif is_parquet:
            yield position, BadRecord(None, result.field, result.message, position, reason)
        else:
            yield position, BadRecord(position, result.field, result.message, reason=reason)


def _decode_messages_column(
    row: dict[str, Any], path: Path, position: int
) -> dict[str, Any] | ValidationProblem | MalformedLine:
    # CSV cells are text, and some Parquet writers store messages as a JSON string too.
    messages = row.get("messages")
    if not isinstance(messages, str):
        return row
    try:
        row["messages"] = json.loads(messages)
    except json.JSONDecodeError as exc:
        return ValidationProblem(
            ("messages",), f"expected a JSON array of messages, got invalid JSON: {exc.msg}"
        )
    except RecursionError:
        message = "the messages cell is nested deeper than the JSON parser allows"
        return MalformedLine(message, reason=TOO_DEEP, path=path, line=position)
    return row


def _csv_items(path: Path, max_field_bytes: int | None = None) -> Iterator[tuple[int, Any]]:
    # Message arrays easily exceed the csv module's default 128 KiB field limit; the limit
    # is the module's (a process-wide setting), so it is set at the start of every read.
    csv.field_size_limit(max_field_bytes or 2**31 - 1)
    # surrogateescape: a byte that is not UTF-8 becomes a lone surrogate in its cell, so the
    # bad record is found and counted instead of ending the read.
    with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise InputError("empty CSV file: expected a header row naming the fields", path=path)
        if any(_UNDECODABLE.search(name) for name in header):
            raise InputError("not valid UTF-8 text", path=path, line=1)
        duplicates = sorted({name for name in header if header.count(name) > 1})
        if duplicates:
            raise InputError(f"duplicate CSV column(s) {duplicates}", path=path, line=1)
        line = reader.line_num + 1
        while True:
            # A quoted cell may span lines: report the line where the record starts.
            start = line
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                line = reader.line_num + 1
                reason = TOO_LARGE if "field larger" in str(exc) else SCHEMA
                yield (
                    start,
                    MalformedLine(f"malformed CSV: {exc}", reason=reason, path=path, line=start),
                )
                continue
            line = reader.line_num + 1
            if not cells:
                continue  # blank line
            if any(_UNDECODABLE.search(cell) for cell in cells):
                message = "not valid UTF-8 text"
                yield start, MalformedLine(message, reason=ENCODING, path=path, line=start)
            elif len(cells) != len(header):
                yield (
                    start,
                    ValidationProblem(
                        (), f"expected {len(header)} columns as in the header, got {len(cells)}"
                    ),
                )
            else:
                row = dict(zip(header, cells, strict=True))
                yield start, _decode_messages_column(row, path, start)


def _parquet_items(path: Path) -> Iterator[tuple[int, Any]]:
    import pyarrow as pa  # imported here: only Parquet users pay for it
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"not a readable Parquet file: {exc}", path=path) from None
    row = 0
    with parquet:
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS):
            for item in batch.to_pylist():
                yield row, _decode_messages_column(item, path, row)
                row += 1


def to_messages(record: Record) -> list[dict[str, str]]:
    """The record as a list of ``{"role", "content"}`` messages, ready for a chat template.

    A prompt/completion record becomes a user turn and an assistant turn. Extra keys of chat
    messages (``name``, ``weight``) are not carried over.

    Args:
        record: A chat or prompt/completion record.

    Raises:
        DarkmirrorError: For a text record, which has no roles.
    """
    if isinstance(record, ChatRecord):
        return [{"role": m.role, "content": m.content} for m in record.messages]
    if isinstance(record, PromptCompletionRecord):
        return [
            {"role": "user", "content": record.prompt},
            {"role": "assistant", "content": record.completion},
        ]
    if isinstance(record, TextRecord):
        raise DarkmirrorError(
            "a text record has no user or assistant turns and cannot be used as a chat; "
            "use chat ({'messages': [...]}) or prompt/completion records for this step"
        )
    raise TypeError(f"expected a record, got {type(record).__name__}")


def dataset_sha256(path: str | Path) -> str:
    """SHA-256 of the file's bytes (hex), read in chunks; identifies a dataset in run records.

    Args:
        path: Any file.
    """
    with require_file(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
