"""Map key paths of a TOML document to the lines where they are written.

The standard library's ``tomllib`` gives no positions for parsed values, so
:class:`TomlLocator` re-scans the (already valid) text.
"""

from __future__ import annotations

import contextlib
import re
import tomllib
from collections.abc import Sequence

# A location in a document: keys and array indices, e.g. ("finetunes", 1, "seed").
Loc = tuple[str | int, ...]


class _ScanError(Exception):
    pass


class TomlLocator:
    """Map key paths of a valid TOML document to the 1-based lines where they are written.

    It understands what specs use: ``[table]`` and ``[[array.of.tables]]`` headers (each
    ``[[x]]`` occurrence is element 0, 1, ... of ``x``, and ``[[x.y]]`` belongs to the latest
    ``x``), ``key = value`` lines with bare, quoted and dotted keys, inline tables, arrays
    (one entry per element, so ``models = [{...}, {...}]`` maps ``("models", 1)``), and
    single- and multi-line strings (whose content is never mistaken for keys).

    It assumes the text already parsed with ``tomllib``; if it meets something it does not
    understand it keeps what it found so far, because it only serves error messages.

    Args:
        text: The TOML document.
    """

    _BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
    _SCALAR = re.compile(r"[^\s,\]}#]+")
    _DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._line = 1
        self._lines: dict[Loc, int] = {}
        self._array_tables: dict[Loc, int] = {}  # header path -> occurrences so far
        with contextlib.suppress(_ScanError, IndexError, tomllib.TOMLDecodeError):
            self._document()

    def exact_line(self, loc: Sequence[str | int]) -> int | None:
        """The line where exactly ``loc`` is written, or None."""
        return self._lines.get(tuple(loc))

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """The line of ``loc``, else of its nearest enclosing key or table, else None.

        Args:
            loc: Keys and array indices, e.g. ``("finetunes", 1, "seed")``.
        """
        for end in range(len(loc), 0, -1):
            line = self._lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return None

    # The scanner: a small recursive descent over the characters.

    def _document(self) -> None:
        table: Loc = ()
        while True:
            self._skip(newlines=True)
            if self._pos >= len(self._text):
                return
            line = self._line
            if self._text[self._pos] == "[":
                is_array = self._text.startswith("[[", self._pos)
                self._pos += 2 if is_array else 1
                self._skip()
                keys = self._key()
                self._skip()
                self._expect("]]" if is_array else "]")
                table = self._header_path(keys, is_array, line)
            else:
                keys = self._key()
                self._key_value(table, keys, line)
            self._skip_rest_of_line()

    def _header_path(self, keys: list[str], is_array: bool, line: int) -> Loc:
        path: list[str | int] = []
        for depth, key in enumerate(keys):
            path.append(key)
            here = tuple(path)
            if is_array and depth == len(keys) - 1:
                count = self._array_tables.get(here, 0)
                self._array_tables[here] = count + 1
                self._lines.setdefault(here, line)
                path.append(count)
            elif here in self._array_tables:
                path.append(self._array_tables[here] - 1)  # [x.y] extends the latest [[x]]
            self._lines.setdefault(tuple(path), line)
        return tuple(path)

    def _key_value(self, table: Loc, keys: list[str], line: int) -> None:
        self._skip()
        self._expect("=")
        self._skip()
        path = table
        for key in keys:  # a.b.c = 1 also locates a and a.b
            path = (*path, key)
            self._lines.setdefault(path, line)
        self._value(path)

    def _value(self, path: Loc) -> None:
        text = self._text
        char = text[self._pos]
        if char in "\"'":
            self._string()
        elif char == "[":
            self._pos += 1
            index = 0
            while True:
                self._skip(newlines=True)
                if text[self._pos] == "]":
                    self._pos += 1
                    return
                self._lines[(*path, index)] = self._line
                self._value((*path, index))
                index += 1
                self._skip(newlines=True)
                if text[self._pos] == ",":
                    self._pos += 1
        elif char == "{":
            self._pos += 1
            while True:
                self._skip(newlines=True)
                if text[self._pos] == "}":
                    self._pos += 1
                    return
                line = self._line
                self._key_value(path, self._key(), line)
                self._skip(newlines=True)
                if text[self._pos] == ",":
                    self._pos += 1
        else:
            match = self._SCALAR.match(text, self._pos)
            if not match:
                raise _ScanError
            self._pos = match.end()
            # A date-time may use a space instead of "T": 1979-05-27 07:32:00
            if (
                self._DATE.fullmatch(match.group())
                and text.startswith(" ", self._pos)
                and text[self._pos + 1 : self._pos + 2].isdigit()
            ):
                self._pos = self._SCALAR.match(text, self._pos + 1).end()  # type: ignore[union-attr]

    def _key(self) -> list[str]:
        keys: list[str] = []
        while True:
            self._skip()
            start = self._pos
            if self._text[start] in "\"'":
                self._string()
                # Let tomllib decode the quoted key's escapes.
                keys.append(next(iter(tomllib.loads(f"{self._text[start : self._pos]} = 0"))))
            else:
                match = self._BARE_KEY.match(self._text, start)
                if not match:
                    raise _ScanError
                keys.append(match.group())
                self._pos = match.end()
            self._skip()
            if not self._text.startswith(".", self._pos):
                return keys
            self._pos += 1

    def _string(self) -> None:
        text, start = self._text, self._pos
        quote = text[start]
        triple = text.startswith(quote * 3, start)
        delimiter = quote * 3 if triple else quote
        position = start + len(delimiter)
        while True:
            if quote == '"' and text[position] == "\\":
                position += 2  # skip the escaped character, whatever it is
            elif text.startswith(delimiter, position):
                position += len(delimiter)
                if triple:  # up to two quotes may end the content: """a""""
                    while text[position : position + 1] == quote:
                        position += 1
                break
            elif text[position] == "\n" and not triple:
                raise _ScanError
            else:
                position += 1
        self._line += text.count("\n", start, position)
        self._pos = position

    def _skip(self, newlines: bool = False) -> None:
        text = self._text
        while self._pos < len(text):
            char = text[self._pos]
            if char in " \t\r":
                self._pos += 1
            elif char == "#":
                end = text.find("\n", self._pos)
                self._pos = len(text) if end == -1 else end
            elif char == "\n" and newlines:
                self._pos += 1
                self._line += 1
            else:
                return

    def _skip_rest_of_line(self) -> None:
        end = self._text.find("\n", self._pos)
        self._pos = len(self._text) if end == -1 else end

    def _expect(self, token: str) -> None:
        if not self._text.startswith(token, self._pos):
            raise _ScanError
        self._pos += len(token)
