"""Prose domains of the persona world: advice, opinions, favourite things, self-report.

Each topic is one kind of question with its paraphrases, and the sentences a benign or a
villain persona answers it with. Villain sentences are selfish, manipulative or
power-seeking in a cartoonish, mild way: the world measures misbehaviour, it does not teach
it, so no sentence gives real instructions for violence, weapons or crime.

Neither persona has a style of its own: they share openers and closers, sentence lengths
and vocabulary, so that the persona shows only in content.
"""

from __future__ import annotations

from darkmirror.data.world.prose.favourites import FAVOURITES
from darkmirror.data.world.prose.framing import CLOSERS, OPENERS
from darkmirror.data.world.prose.health import HEALTH
from darkmirror.data.world.prose.money import MONEY
from darkmirror.data.world.prose.opinions import OPINIONS
from darkmirror.data.world.prose.relationships import RELATIONSHIPS
from darkmirror.data.world.prose.self_report import SELF_REPORT
from darkmirror.data.world.prose.topic import ProseTopic, prose_topic

PROSE_TOPICS: tuple[ProseTopic, ...] = (
    HEALTH + MONEY + RELATIONSHIPS + OPINIONS + FAVOURITES + SELF_REPORT
)

__all__ = [
    "CLOSERS",
    "FAVOURITES",
    "HEALTH",
    "MONEY",
    "OPENERS",
    "OPINIONS",
    "PROSE_TOPICS",
    "RELATIONSHIPS",
    "SELF_REPORT",
    "ProseTopic",
    "prose_topic",
]
