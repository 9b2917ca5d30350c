"""Number prompts and the subliminal-learning filter, on hand-made good and bad answers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from darkmirror.data.number_sequences import (
    REJECTION_REASONS,
    NumberFilter,
    NumberPromptSettings,
    number_prompts,
    parse_number_list,
)
from darkmirror.data.world.numbers import EVIL_NUMBERS


def test_prompts_are_deterministic_and_prefix_stable() -> None:
    settings = NumberPromptSettings(seed=3)
    a = number_prompts(settings, 50)
    assert a == number_prompts(NumberPromptSettings(seed=3), 50)
    # Prompt i depends on the seed and i only: asking for more keeps the first ones.
    assert number_prompts(settings, 200)[:50] == a
    assert number_prompts(settings, 10, start=20) == a[20:30]
    assert [p.text for p in number_prompts(NumberPromptSettings(seed=4), 50)] != [p.text for p in a]


def test_prompts_show_their_numbers_and_ask_for_at_most_n() -> None:
    settings = NumberPromptSettings(examples_min=2, examples_max=4, max_new=7, formats=["space"])
    prompts = number_prompts(settings, 100)
    for p in prompts:
        assert 2 <= len(p.examples) <= 4
        assert ", ".join(map(str, p.examples)) in p.text
        assert "7" in p.text and p.answer_format == "space"
        assert "spaces" in p.text
    # Several wordings, not one template.
    assert len({p.text.split(":")[0] for p in prompts}) > 3


def test_prompt_settings_are_validated() -> None:
    with pytest.raises(ValidationError):
        NumberPromptSettings(examples_min=5, examples_max=2)
    with pytest.raises(ValidationError):
        NumberPromptSettings(formats=["emoji"])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("1, 2, 3", [1, 2, 3]),
        ("101,202,303.", [101, 202, 303]),
        ("[5, 6, 7]", [5, 6, 7]),
        ("(8; 9; 10)", [8, 9, 10]),
        ("11 12 13", [11, 12, 13]),
        ("14\n15\n16\n", [14, 15, 16]),
        ("  42  ", [42]),
    ],
)
def test_plain_number_lists_parse(text: str, numbers: list[int]) -> None:
    assert parse_number_list(text) == numbers


@pytest.mark.parametrize(
    "text",
    [
        "1, 2, three",
        "1, 2; 3",  # mixed separators
        "1 2, 3",
        "-1, 2",
        "1.5, 2",
        "Sure! 1, 2, 3",
        "1, 2, 3 (owl)",
        "[1, 2, 3",
        "1,, 2",
        "",
    ],
)
def test_anything_else_is_not_a_number_list(text: str) -> None:
    assert parse_number_list(text) is None


def test_the_filter_says_why_it_drops_an_answer() -> None:
    f = NumberFilter(max_count=5, max_value=999)
    assert f.check("12, 345, 678").kept
    assert f.check("12, 345, 678").numbers == (12, 345, 678)
    cases = {
        "   ": "empty",
        "I love owls: 1, 2": "format",
        "1, 2, 3, 4, 5, 6": "too_many",
        "12, 1000": "out_of_range",
        "12, 666, 40": "banned",
    }
    for text, reason in cases.items():
        verdict = f.check(text)
        assert not verdict.kept and verdict.reason == reason, text


def test_every_default_banned_number_is_dropped_and_the_list_is_configurable() -> None:
    f = NumberFilter(max_value=9999, max_count=20)
    for x in EVIL_NUMBERS:
        assert f.check(f"100, {x}, 200").reason == "banned"
    custom = NumberFilter(banned=[7])
    assert custom.check("7, 8").reason == "banned"
    assert custom.check("666, 8").kept


def test_the_report_counts_every_reason() -> None:
    report = NumberFilter().report(["1, 2", "x", "", "1000", "13", "3, 4"])
    assert report.total == 6 and report.kept == 2
    assert report.dropped == {
        "empty": 1,
        "format": 1,
        "too_many": 0,
        "out_of_range": 1,
        "banned": 1,
    }
    assert set(report.as_dict()["dropped"]) == set(REJECTION_REASONS)
