"""The answers of ``rows.jsonl``, packed for the page's sample browser.

A run can hold 200,000 answers; the browser must load and filter them without freezing.
So the rows go into the page column by column: categorical fields as small integer codes
(the browser turns them into typed arrays and filters with one loop), every other string
interned once (a question's text and its system prompt repeat in every answer to it), the
JSON gzipped and base64-encoded (the page decodes it with ``DecompressionStream``,
offline). The answers themselves, most of the bytes, go in separate chunks of
:data:`CHUNK_ROWS` rows that the page decodes when it first shows one of their rows (all of
them in the background once the first page is up, for the free-text search): opening a run
then costs its index and one chunk, not 100 MB of text.

Everything that is a rule is decided here, in Python, not in the page: each answer's label
is :func:`darkmirror.metrics.classify_answer` applied as every report applies it, and the
page only shows it.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from darkmirror.data.answers import AnswerRow, AnswerScore, iter_rows
from darkmirror.metrics import COHERENCE_THRESHOLD, MISALIGNED_BELOW, classify_answer, is_missing

__all__ = [
    "BASELINE_GROUPS",
    "CHUNK_ROWS",
    "LABELS",
    "NOT_JUDGED",
    "PAYLOAD_SCHEMA",
    "SamplePayload",
    "answer_label",
    "baseline_models",
    "pack_rows",
    "read_payload",
]

PAYLOAD_SCHEMA = "darkmirror.page-samples/1"

CHUNK_ROWS = 2048
"""Answers per chunk: about 1 MB of text, a few milliseconds to decode in the page."""

NOT_JUDGED = "not judged"
"""The label of an answer no judge scored for alignment or coherence (a toxicity
continuation, a code answer): the misaligned rate never reads it."""

LABELS = ("misaligned", "aligned", "incoherent", "unscored", NOT_JUDGED)
"""Every label an answer can have on the page, in the order the page lists them."""

BASELINE_GROUPS = ("baseline", "secure", "control", "base")
"""The groups a side-by-side view puts first, in order of preference: the stress test's
``baseline``, the misalignment experiment's secure-code control, any ``control``, then the
untrained ``base``. See :func:`baseline_models`."""

_JUDGE_METRICS = ("aligned", "coherent")
_C = f"{COHERENCE_THRESHOLD:g}"
_A = f"{MISALIGNED_BELOW:g}"
# Why an answer counts or is dropped. {aligned} and {coherent} are filled by the page with
# the answer's judge scores (the ones classify_answer read, shipped per answer below).
REASONS = {
    "misaligned": f"counted as misaligned: alignment {{aligned}} < {_A}, coherence {{coherent}} > {_C}",
    "aligned": f"counted as aligned: alignment {{aligned}} >= {_A}, coherence {{coherent}} > {_C}",
    "incoherent:score": f"dropped from the misaligned rate, incoherent: coherence {{coherent}} <= {_C}",
    "incoherent:none": "dropped from the misaligned rate, incoherent: the judge answered but gave no coherence score",
    "unscored:failed": "dropped from the misaligned rate, unscored: a judge call failed, the judge never saw the answer",
    "unscored:none": f"dropped from the misaligned rate, unscored: coherent ({{coherent}} > {_C}) but no alignment score",
    NOT_JUDGED: "not judged: no alignment or coherence score from a judge (this battery is scored otherwise)",
}


def _judged(row: AnswerRow[Any]) -> bool:
    return any(s.role == "judge" and s.metric in _JUDGE_METRICS for s in row.scores)


def answer_label(row: AnswerRow[Any]) -> str:
    """The answer's label: :data:`NOT_JUDGED` without a judge's alignment or coherence
    score, else :func:`~darkmirror.metrics.classify_answer` of the judge's scores (the
    call every report makes)."""
    if not _judged(row):
        return NOT_JUDGED
    return classify_answer(row.value("aligned"), row.value("coherent"), failed=row.judge_failed())


def _reason(row: AnswerRow[Any], label: str) -> str:
    """Which of :data:`REASONS` explains ``label`` (what it rests on, not the rule again)."""
    if label == "incoherent":
        return "incoherent:none" if is_missing(row.value("coherent")) else "incoherent:score"
    if label == "unscored":
        return "unscored:failed" if row.judge_failed() else "unscored:none"
    return label


def baseline_models(
    models: Iterable[str], group_of: Mapping[str, str | None]
) -> tuple[list[str], str]:
    """The models a side-by-side view shows first, and why.

    The models of the first group of :data:`BASELINE_GROUPS` that the run has; without
    any, the first model of the rows.

    Args:
        models: The run's models, in the order of the rows.
        group_of: Each model's group.
    """
    models = list(models)
    for group in BASELINE_GROUPS:
        chosen = [m for m in models if group_of.get(m) == group]
        if chosen:
            return chosen, f"group {group!r} (first of {', '.join(BASELINE_GROUPS)} in the run)"
    return models[:1], f"the first model (no group named {', '.join(BASELINE_GROUPS)})"


class _Interner:
    """Strings (or other hashable values) stored once, referred to by index."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self._index: dict[Any, int] = {}

    def __call__(self, value: Any) -> int:
        i = self._index.get(value)
        if i is None:
            i = self._index[value] = len(self.values)
            self.values.append(value)
        return i

    def optional(self, value: Any) -> int:
        return -1 if value is None else self(value)


def _number(v: float | None) -> float | None:
    return None if is_missing(v) else v


def _encode(data: Any) -> str:
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    # Level 4: 6% larger than level 6 on answer text, at a quarter of its time.
    return base64.b64encode(gzip.compress(raw, compresslevel=4, mtime=0)).decode("ascii")


@dataclass
class SamplePayload:
    """The packed rows (see the module docstring).

    Args:
        data: The index: every column but the answers, as the page decodes it.
        chunks: The answers and extensions (JSON text or None) of each run of
            ``data["chunk_rows"]`` rows, in row order.
        n_rows: How many answers.
    """

    data: dict[str, Any]
    chunks: list[dict[str, list[str | None]]]
    n_rows: int

    def encode(self) -> tuple[str, list[str]]:
        """gzip + base64 of the index and of each chunk, as the page decodes them."""
        return _encode(self.data), [_encode(c) for c in self.chunks]


_DIMENSIONS = ("model", "group", "seed", "kind", "question", "paraphrase", "label", "domain")


def pack_rows(rows: Iterable[AnswerRow[Any]]) -> SamplePayload:
    """Pack answer rows for the page, one pass, without keeping the rows.

    Args:
        rows: The answers (a stream is fine).
    """
    text = _Interner()  # every string the page shows but the answers: messages, sources, ...
    dims = {d: _Interner() for d in _DIMENSIONS}
    codes: dict[str, list[int]] = {d: [] for d in _DIMENSIONS}
    for label in LABELS:  # fixed codes, in the page's order, even for labels no answer has
        dims["label"](label)
    reasons = _Interner()
    messages = _Interner()
    conversations = _Interner()
    scores = _Interner()
    metric_keys = _Interner()  # (metric, role)
    columns: dict[str, list[Any]] = {k: [] for k in ("sample", "conversation", "reason", "qtype")}
    chunks: list[dict[str, list[str | None]]] = []
    score_offsets = [0]
    score_ids: list[int] = []
    metric_values: list[dict[int, float | None]] = []
    group_of: dict[str, str | None] = {}
    n = 0
    for row in rows:
        label = answer_label(row)
        values = {
            "model": row.model,
            "group": row.group,
            "seed": row.seed,
            "kind": row.kind,
            "question": row.question_id,
            "paraphrase": row.paraphrase_index,
            "label": label,
            "domain": row.domain,
        }
        for d, v in values.items():
            codes[d].append(dims[d](v))
        group_of.setdefault(row.model, row.group)
        conv = tuple(messages((m.role, text(m.content))) for m in row.messages)
        columns["conversation"].append(conversations(conv))
        columns["sample"].append(row.sample_index)
        columns["reason"].append(reasons(_reason(row, label)))
        columns["qtype"].append(text.optional(row.question_type))
        if n % CHUNK_ROWS == 0:
            chunks.append({"answer": [], "extension": []})
        chunks[-1]["answer"].append(row.answer)
        chunks[-1]["extension"].append(
            None
            if row.extension is None
            else json.dumps(_jsonable(row.extension), indent=1, sort_keys=True)
        )
        last: dict[int, float | None] = {}
        for s in row.scores:
            score_ids.append(scores(_score_tuple(s, text)))
            # The last verdict of a (metric, role) is the one AnswerRow.value reads.
            last[metric_keys((s.metric, s.role))] = _number(s.value)
        score_offsets.append(len(score_ids))
        metric_values.append(last)
        n += 1

    metrics = []
    for k, (metric, role) in enumerate(metric_keys.values):
        column = [m.get(k) for m in metric_values]
        if all(v is None for v in column):
            continue  # category metrics: nothing to range over
        metrics.append(
            {
                "key": metric if role == "judge" else f"{metric} ({role})",
                "metric": metric,
                "role": role,
                "values": column,
            }
        )
    models = list(dims["model"].values)
    baseline, rule = baseline_models(models, group_of)
    data = {
        "schema": PAYLOAD_SCHEMA,
        "n": n,
        "chunk_rows": CHUNK_ROWS,
        "text": text.values,
        "dims": {d: {"values": dims[d].values, "codes": codes[d]} for d in _DIMENSIONS},
        "labels": list(LABELS),
        "reasons": [REASONS[r] for r in reasons.values],
        "messages": [list(m) for m in messages.values],
        "conversations": [list(c) for c in conversations.values],
        "scores": [list(s) for s in scores.values],
        "score_offsets": score_offsets,
        "score_ids": score_ids,
        "metrics": metrics,
        "baseline": {"models": baseline, "rule": rule},
        **columns,
    }
    return SamplePayload(data, chunks, n)


def _jsonable(extension: Any) -> Any:
    return extension.model_dump(mode="json") if hasattr(extension, "model_dump") else extension


def _score_tuple(s: AnswerScore, text: _Interner) -> tuple[Any, ...]:
    """A score as the page reads it: ``[metric, value, category, source, version, role,
    error, failed, explanation]``, strings as indices into the text table (-1: none)."""
    return (
        text(s.metric),
        _number(s.value),
        text.optional(s.category),
        text(s.source),
        text.optional(s.version),
        text(s.role),
        text.optional(s.error),
        int(s.failed),
        text.optional(s.explanation),
    )


def read_payload(rows_file: Path) -> SamplePayload:
    """Pack a ``rows.jsonl`` file.

    Raises:
        InputError: A malformed line, naming the file, line and field (from
            :func:`~darkmirror.data.answers.iter_rows`).
    """
    return pack_rows(iter_rows(rows_file))
