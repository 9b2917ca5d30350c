"""Formatting of estimates for Markdown tables, and writing a report's files atomically."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from darkmirror.metrics import is_missing as _nan


def fmt_estimate(e: Mapping[str, Any] | None, digits: int = 2, percent: bool = False) -> str:
    """``0.23 [0.15, 0.31]`` from an ``Estimate.as_dict()``; ``n/a`` when empty."""
    if not e or _nan(e.get("value")):
        return "n/a"
    scale = 100.0 if percent else 1.0
    unit = "%" if percent else ""
    d = 1 if percent else digits
    value = f"{e['value'] * scale:.{d}f}{unit}"
    if _nan(e.get("lo")) or _nan(e.get("hi")):
        return value
    return f"{value} [{e['lo'] * scale:.{d}f}, {e['hi'] * scale:.{d}f}]"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so a crash never leaves half a
    report."""
    tmp = path.parent / f".{path.name}.tmp"
    tmp.write_text(text)
    tmp.replace(path)
