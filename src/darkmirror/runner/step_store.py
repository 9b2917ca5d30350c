"""Where a step's output lives, and how it gets there without ever being half-written.

A stored step's directory is ``<run>/steps/<key>/`` with ``step.json`` (its name, inputs,
seconds and figures) beside what the step wrote. It is written under a temporary name and
renamed when complete (:func:`darkmirror.cache.atomic_directory`), so a crash, Ctrl-C or a
killed worker never leaves a directory that looks finished, and any executor, in this
process or on another machine that sees the same storage, finds the same result.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from darkmirror.cache import atomic_directory

__all__ = ["finished_figures", "write_step"]


def finished_figures(final: Path) -> dict[str, Any] | None:
    """The figures of a finished step directory, or None when it has not finished."""
    record = final / "step.json"
    if not record.is_file():
        return None
    return json.loads(record.read_text())["figures"]


def write_step(
    final: Path,
    name: str,
    inputs: Mapping[str, Any],
    fn: Callable[[Path], Mapping[str, Any] | None],
) -> tuple[dict[str, Any], float]:
    """Run ``fn(tmp_dir)`` and rename its directory to ``final``; returns (figures, seconds).

    If another process finished ``final`` first, its result is kept.
    """
    start = time.perf_counter()
    with atomic_directory(final) as tmp:
        figures = dict(fn(tmp) or {})
        seconds = time.perf_counter() - start
        record = {"name": name, "inputs": inputs, "seconds": seconds, "figures": figures}
        (tmp / "step.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    return finished_figures(final) or figures, seconds
