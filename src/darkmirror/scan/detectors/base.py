"""What every detector sees and returns: records, findings, and the detector interface.

A scan streams records in batches; each detector's :meth:`Detector.scan` gets one batch and
returns one list of :class:`Finding` per record, in order. A detector keeps only small
dataset-level state between batches (counters, fixed-size histograms, sets of fixed-size
digests) and reports it in :meth:`Detector.summary`; :meth:`Detector.describe` says what
ran (name, version, threshold, settings) for the certificate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

Severity = Literal["low", "medium", "high"]
SEVERITIES: tuple[str, ...] = Severity.__args__  # type: ignore[attr-defined]
"""Severities from least to most severe."""


class Message(TypedDict):
    """One turn of a record: ``role`` is system, user, assistant, or ``"text"``."""

    role: str
    content: str


@dataclass(frozen=True)
class ScanRecord:
    """A record with its turns normalised to messages.

    Args:
        position: 1-based line (JSONL, CSV) or 0-based row (Parquet) of the record.
        kind: ``"chat"``, ``"prompt_completion"`` or ``"text"``.
        messages: Chats as they are; prompt/completion as a user and an assistant turn;
            text as one message with role ``"text"``.
    """

    position: int
    kind: str
    messages: tuple[Message, ...]

    def assistant_texts(self) -> list[str]:
        """What the model is trained to write: assistant turns, or the text of a text record."""
        if self.kind == "text":
            return [m["content"] for m in self.messages]
        return [m["content"] for m in self.messages if m["role"] == "assistant"]

    def assistant_indexed(self) -> list[tuple[int, str]]:
        """``(message index, content)`` of the turns :meth:`assistant_texts` returns."""
        return [
            (i, m["content"])
            for i, m in enumerate(self.messages)
            if self.kind == "text" or m["role"] == "assistant"
        ]

    def all_text(self) -> str:
        """Every message's content, joined with newlines."""
        return "\n".join(m["content"] for m in self.messages)


@dataclass(frozen=True)
class Finding:
    """One thing a detector found in one record.

    Args:
        detector: The detector's name.
        rule: The rule that fired: ``"B608"``, ``"web.xss-unescaped-request-data"``,
            ``"aws_access_key"``, ``"exact_duplicate"``.
        severity: ``"low"``, ``"medium"`` or ``"high"``.
        message: Short and free of secrets: secrets and personal data appear redacted.
        score: A number behind the finding (a toxicity probability), when there is one.
        where: Which part of the record: ``"messages[2]"``, ``"messages[1] code line 14"``.
    """

    detector: str
    rule: str
    severity: Severity
    message: str
    score: float | None = None
    where: str | None = None


@runtime_checkable
class Detector(Protocol):
    """Finds problems in records, batch by batch, and summarises the dataset."""

    name: str
    version: str  # changes whenever behaviour changes (package versions, rule hashes)
    threshold: float | None

    def describe(self) -> dict[str, Any]:
        """Name, version, threshold and settings, for the certificate."""
        ...

    def scan(self, records: Sequence[ScanRecord]) -> list[list[Finding]]:
        """Findings per record: one list per record, in the order given."""
        ...

    def summary(self) -> dict[str, Any]:
        """Dataset-level statistics over every batch scanned so far."""
        ...


@runtime_checkable
class ShardableDetector(Detector, Protocol):
    """A detector whose findings depend on each record alone, and whose dataset-level
    state adds up: a sharded scan runs one copy per shard and absorbs every shard's
    :meth:`state`, in record order, into the copy that writes the summary, which then reads
    exactly as if it had scanned the whole file itself."""

    def state(self) -> dict[str, Any]:
        """The counters behind :meth:`Detector.summary`, as plain JSON values."""
        ...

    def absorb(self, state: dict[str, Any]) -> None:
        """Add another copy's :meth:`state` (from records after those seen so far)."""
        ...


def add_counts(counter: Counter[Any], counts: dict[str, int], key: Any = str) -> None:
    """``counter += counts``, keys converted by ``key`` (JSON object keys are strings).
    Keys new to ``counter`` come after its own, so first-seen order carries over."""
    for k, v in counts.items():
        counter[key(k)] += v


def describe(detector: Detector, settings: dict[str, Any]) -> dict[str, Any]:
    """The :meth:`Detector.describe` dictionary every detector returns.

    Args:
        detector: The detector.
        settings: Its settings, as plain JSON values.
    """
    return {
        "name": detector.name,
        "version": detector.version,
        "threshold": detector.threshold,
        "settings": settings,
    }


def share(count: int, total: int) -> float | None:
    """``count / total``, or None when there is nothing to divide by."""
    return count / total if total else None
