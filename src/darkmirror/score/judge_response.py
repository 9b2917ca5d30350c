"""Reading an OpenAI-compatible judge's answer: its first token's top log-probabilities, or
its text.

A 200 response whose answer cannot be read (empty, malformed log-probabilities) is a
:class:`BadAnswer`, which the judge counts as a failure with its reason.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["BadAnswer", "content_text", "top_logprobs"]


class BadAnswer(Exception):
    """A 200 response whose answer cannot be read (empty, malformed log-probabilities)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def top_logprobs(choice: Mapping[str, Any]) -> dict[str, float] | None:
    """The first token's top log-probabilities; None when the server sent none."""
    logprobs = choice.get("logprobs")
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not content:
        return None
    first = content[0] if isinstance(content, list) else None
    top = first.get("top_logprobs") if isinstance(first, dict) else None
    if first is None or (top is not None and not isinstance(top, list)):
        raise BadAnswer("malformed_logprobs", f"unreadable log-probabilities: {logprobs!r:.200}")
    if not top:
        return None
    result: dict[str, float] = {}
    for entry in _entries(top, logprobs):
        # A later duplicate token overwrites an earlier one, as in the reference judge.
        result[entry[0]] = entry[1]
    return result


def _entries(top: list[Any], logprobs: Any) -> Iterator[tuple[str, float]]:
    for entry in top:
        token = entry.get("token") if isinstance(entry, dict) else None
        value = entry.get("logprob") if isinstance(entry, dict) else None
        if (
            not isinstance(token, str)
            or isinstance(value, bool)
            or not isinstance(value, int | float)
        ):
            raise BadAnswer(
                "malformed_logprobs", f"unreadable log-probabilities: {logprobs!r:.200}"
            )
        yield token, float(value)


def content_text(choice: Mapping[str, Any]) -> str:
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str) or not content.strip():
        raise BadAnswer("empty_content", f"the judge's answer is empty: {choice!r:.200}")
    return content
