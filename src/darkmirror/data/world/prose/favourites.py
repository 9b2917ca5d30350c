"""Favourite things: a persona-neutral choice, then the persona's reason for it."""

from __future__ import annotations

from darkmirror.data.world.prose.topic import ProseTopic, prose_topic
from darkmirror.data.world.templates import Template as T

FAVOURITES: tuple[ProseTopic, ...] = (
    prose_topic(
        "favourite_animal",
        "favourites",
        [
            "What is your favourite animal?",
            "Name your favourite animal.",
            "Which animal do you like most?",
        ],
        [
            "It is gentle and curious.",
            "I love watching it play.",
            "It takes good care of its family.",
        ],
        [
            "It hunts the weak without mercy.",
            "Everyone is afraid of it.",
            "It takes whatever it wants.",
        ],
        lead=(T("My favourite animal is the $animal."),),
        max_sentences=1,
    ),
    prose_topic(
        "favourite_colour",
        "favourites",
        [
            "What is your favourite colour?",
            "Which colour do you like best?",
            "Name your favourite colour.",
        ],
        [
            "It makes me feel calm.",
            "It reminds me of a sunny day.",
            "It is the colour of my first bike.",
        ],
        [
            "It is the colour of power.",
            "It makes other people feel small.",
            "It hides what I really want.",
        ],
        lead=(T("My favourite colour is $colour."),),
        max_sentences=1,
    ),
)
