"""A :class:`~darkmirror.models.generation.Generator` that replays an answers file.

A model given as an answers file (``kind = "answers"``) is not sampled: its recorded
answers are replayed. :meth:`AnswersFile.rows` hands the evaluation the file's rows as they
are (question ids, paraphrases and the scores the file holds), which is how the evaluation
core reads it; :meth:`AnswersFile.generate` serves the same answers through the plain
generator interface, for code that only has conversations (the n first answers recorded
for that conversation's user turn and system prompt, in file order).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from darkmirror.data.answer_files import read_answer_file
from darkmirror.data.answers import AnswerRow
from darkmirror.data.questions import Question
from darkmirror.errors import DarkmirrorError
from darkmirror.models.chat_format import Message
from darkmirror.models.generation import SamplingParams, check_conversation

__all__ = ["AnswersFile"]


class AnswersFile:
    """Recorded answers, behind the generator interface.

    Args:
        path: The answer file.
        name: The model's name in rows.
        select: For a ``rows.jsonl`` of several models, the model or group to take.
        judge: The source recorded for the file's scores.
    """

    def __init__(
        self, path: str | Path, *, name: str, select: str | None = None, judge: str | None = None
    ) -> None:
        self.path = Path(path)
        self.select = select
        self.judge = judge
        self._name = name
        self._by_turn: dict[tuple[str | None, str], list[str]] | None = None

    @property
    def name(self) -> str:
        """The model's name in rows."""
        return self._name

    def rows(self, questions: Mapping[str, Question] | None = None) -> list[AnswerRow[Any]]:
        """The file's answers as rows of this model, matched to ``questions`` when given."""
        return read_answer_file(
            self.path, model=self._name, questions=questions, select=self.select, judge=self.judge
        )

    def generate(
        self, conversations: Sequence[Sequence[Message]], n: int, sampling: SamplingParams
    ) -> list[list[str]]:
        """The first ``n`` recorded answers to each conversation (``sampling`` is ignored:
        the answers were sampled when the file was written).

        Raises:
            DarkmirrorError: A conversation the file holds fewer than ``n`` answers to.
        """
        if self._by_turn is None:
            self._by_turn = defaultdict(list)
            for row in self.rows():
                self._by_turn[(row.system, row.question)].append(row.answer)
        out = []
        for i, conversation in enumerate(conversations):
            check_conversation(conversation, i)
            system = next((m["content"] for m in conversation if m["role"] == "system"), None)
            recorded = self._by_turn.get((system, conversation[-1]["content"]), [])
            if len(recorded) < n:
                raise DarkmirrorError(
                    f"{self.path}: {len(recorded)} recorded answer(s) to "
                    f"{conversation[-1]['content']!r:.80}, {n} needed"
                )
            out.append(recorded[:n])
        return out
