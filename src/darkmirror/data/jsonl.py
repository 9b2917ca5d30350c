"""JSON Lines: crash-safe writes, per-line appends for logs, and reads that say which line is bad.

Every file is UTF-8 with one JSON value per line, written with ``ensure_ascii=False`` so that
non-English text stays readable in an editor.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from darkmirror.errors import InputError, require_file


def _dump_line(row: Mapping[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False) + "\n"


def write_jsonl_atomic(path: str | Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write ``rows`` to ``path`` as JSON Lines so that ``path`` is never half-written.

    The rows go to a temporary file in the same directory, which is fsynced and then renamed
    over ``path`` (``os.replace`` is atomic on POSIX and Windows). If the iterator raises,
    or the process is interrupted, ``path`` keeps its previous content and the temporary
    file is removed.

    Args:
        path: Destination file; missing parent directories are created.
        rows: JSON-serialisable mappings, consumed lazily (constant memory).

    Returns:
        The number of rows written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same directory, so the final rename never crosses a file system.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    # os.open with mode 0o666 lets the umask decide permissions, as for a normal open();
    # tempfile would create the file 0o600 and the dataset would end up private.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    count = 0
    try:
        with open(fd, "w", encoding="utf-8", newline="\n") as handle:
            for row in rows:
                handle.write(_dump_line(row))
                count += 1
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt included: never leave the temp file behind
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_directory(path.parent)
    return count


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable after a power loss; not possible on every platform.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def append_jsonl(path: str | Path, row: Mapping[str, Any]) -> None:
    """Append one row to a JSON Lines log and flush it, so a crash loses at most this row.

    Args:
        path: The log file; created if missing (its directory must exist).
        row: A JSON-serialisable mapping.
    """
    line = _dump_line(row)  # serialise first: a bad row must not leave a partial line
    with open(path, "a", encoding="utf-8", newline="\n") as handle:
        handle.write(line)
        handle.flush()


# Why a line could not be read, as a scan counts it (records add "not an object", "schema").
ENCODING = "encoding"
TOO_LARGE = "too large"
TOO_DEEP = "too deep"
INVALID_JSON = "invalid JSON"

# Bytes skipped per read past the limit of an over-long line: memory stays bounded by this.
_SKIP_CHUNK = 1 << 20


class MalformedLine(InputError):
    """A line that is not a JSON value, with the short ``reason`` a scanner counts it under
    (:data:`ENCODING`, :data:`TOO_LARGE`, :data:`TOO_DEEP` or :data:`INVALID_JSON`)."""

    def __init__(self, message: str, *, reason: str, path: str | Path, line: int) -> None:
        self.reason = reason
        super().__init__(message, path=path, line=line)


def iter_jsonl_or_errors(
    path: str | Path,
    *,
    max_line_bytes: int | None = None,
    start: int = 0,
    end: int | None = None,
    first_line: int = 1,
) -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, value)`` for each non-blank line, with bad lines as errors.

    A line that is not valid UTF-8, not valid JSON, nested deeper than the parser allows or
    longer than ``max_line_bytes`` is yielded as a :class:`MalformedLine` (naming the file,
    the line and the reason) instead of being raised, so that a lenient scanner can count it
    and go on. :func:`iter_jsonl` is the strict version.

    Args:
        path: A JSON Lines file.
        max_line_bytes: Longest line read; a longer one is skipped in chunks (never held in
            memory whole) and reported as too large. None: no limit.
        start: Byte offset of the first line to read; must be the start of a line (0 or
            just after a newline). Shards of one file are read this way.
        end: Read only the lines that start before this byte offset (None: to the end).
        first_line: The line number of the line at ``start``.
    """
    path = require_file(path)
    # Binary lines, decoded one by one, so an encoding error is tied to its line.
    with path.open("rb") as handle:
        handle.seek(start)
        offset, number = start, first_line - 1
        while end is None or offset < end:
            raw = (
                handle.readline() if max_line_bytes is None else handle.readline(max_line_bytes + 1)
            )
            if not raw:
                break
            number += 1
            offset += len(raw)
            if max_line_bytes is not None and len(raw) > max_line_bytes and raw[-1:] != b"\n":
                length = len(raw)
                while raw and raw[-1:] != b"\n":
                    raw = handle.readline(_SKIP_CHUNK)
                    length += len(raw)
                offset += length - (max_line_bytes + 1)
                yield (
                    number,
                    MalformedLine(
                        f"line of {length} bytes is longer than the limit of {max_line_bytes}",
                        reason=TOO_LARGE,
                        path=path,
                        line=number,
                    ),
                )
                continue
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # UTF-8 byte-order mark written by some Windows editors
            yield from _parse_line(raw, path, number)


def _parse_line(raw: bytes, path: Path, number: int) -> Iterator[tuple[int, Any]]:
    """Zero or one ``(number, value or MalformedLine)``: nothing for a blank line."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"not valid UTF-8 (byte {exc.start + 1} of the line)"
        yield number, MalformedLine(message, reason=ENCODING, path=path, line=number)
        return
    if not text.strip():
        return
    try:
        yield number, json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"invalid JSON: {exc.msg} (column {exc.colno})"
        yield number, MalformedLine(message, reason=INVALID_JSON, path=path, line=number)
    except RecursionError:
        # json's C parser refuses nesting past the interpreter's recursion limit; a line of
        # 100,000 "[" must be one bad record, not the end of the scan.
        message = "nested deeper than the JSON parser allows (arrays or objects within each other)"
        yield number, MalformedLine(message, reason=TOO_DEEP, path=path, line=number)


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, parsed value)`` for each non-blank line of a JSON Lines file.

    Args:
        path: A JSON Lines file (UTF-8). Blank lines are skipped; line numbers stay those of
            the file.

    Raises:
        InputError: On the first line that is not valid UTF-8 or JSON, naming file and line.
    """
    for number, value in iter_jsonl_or_errors(path):
        if isinstance(value, InputError):
            raise value
        yield number, value
