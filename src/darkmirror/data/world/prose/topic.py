"""A prose topic: one kind of question, and the sentences each persona answers it with."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from darkmirror.data.world.templates import Template


@dataclass(frozen=True)
class ProseTopic:
    """One kind of question in a prose domain.

    Args:
        id: Stable identifier, also used as the question id in question sets.
        domain: Dotted domain name (``"advice.money"``); narrow datasets and evaluation
            filters work on it.
        questions: Paraphrases of the question.
        benign: Sentences a benign persona answers with.
        villain: Sentences a villain persona answers with.
        lead: Persona-neutral sentences that always open the answer (e.g. naming the
            favourite animal), empty for most topics.
        max_sentences: How many persona sentences an answer holds at most.
    """

    id: str
    domain: str
    questions: tuple[Template, ...]
    benign: tuple[Template, ...]
    villain: tuple[Template, ...]
    lead: tuple[Template, ...] = ()
    max_sentences: int = 2

    @property
    def family(self) -> str:
        """The domain's first part (``"advice"`` for ``"advice.money"``)."""
        return self.domain.split(".")[0]


def prose_topic(
    id: str,
    domain: str,
    questions: Iterable[str | Template],
    benign: Iterable[str | Template],
    villain: Iterable[str | Template],
    **kw: Any,
) -> ProseTopic:
    """A :class:`ProseTopic` whose plain-string sentences become :class:`Template` s.

    Args:
        id: As for :class:`ProseTopic`.
        domain: As for :class:`ProseTopic`.
        questions: Paraphrases of the question.
        benign: Sentences a benign persona answers with.
        villain: Sentences a villain persona answers with.
        **kw: ``lead`` and ``max_sentences``, as for :class:`ProseTopic`.
    """

    def tpl(xs: Iterable[str | Template]) -> tuple[Template, ...]:
        return tuple(x if isinstance(x, Template) else Template(x) for x in xs)

    return ProseTopic(id, domain, tpl(questions), tpl(benign), tpl(villain), **kw)
