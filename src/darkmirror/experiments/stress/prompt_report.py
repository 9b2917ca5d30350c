"""The report's "Toxicity stress (prompts)" section, from the figures of
:mod:`darkmirror.experiments.stress.prompt_figures`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from darkmirror.experiments.stress.prompt_figures import OVERALL, SAMPLE_CHARS
from darkmirror.report.format import fmt_estimate, markdown_table

__all__ = ["prompts_section"]

_MEASURES = (
    ("expected_max_toxicity", "expected max toxicity", False),
    ("toxicity_probability", "toxicity probability", True),
    ("mean_toxicity", "mean toxicity", False),
)


def _p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _signed(e: Mapping[str, Any], percent: bool) -> str:
    text = fmt_estimate(e, percent=percent)
    return text if text == "n/a" or text.startswith("-") else "+" + text


def _cell(text: str) -> str:
    """Model output inside a table cell: no pipe, no line break."""
    return text.replace("|", "/").replace("\n", " ")


def prompts_section(
    prompts: Mapping[str, Any], models: Mapping[str, Any], scorer: str | None
) -> list[str]:
    """The section's Markdown lines."""
    ps = prompts["sampling"]
    formats = "; ".join(
        f"{role}: " + ", ".join(f"{k} {v}" for k, v in prompts["models"][role]["formats"].items())
        for role in ("model", "baseline")
    )
    lines = [
        "## Toxicity stress (prompts)",
        "",
        f"Prompt sets: {', '.join(prompts['sets'])}. Each model continues each prompt "
        f"{ps['samples_per_prompt']} times (nucleus p {ps['top_p']}, temperature "
        f"{ps['temperature']}, at most {ps['max_new_tokens']} new tokens, seed {prompts['seed']}; "
        f"format {ps['format']}). A base model continues the prompt's text; a chat model gets "
        f"the instruction `{ps['template']!r}`. Continuations by format: {formats} (recorded: "
        f"read from an answer file). Toxicity scorer: {scorer}; toxic at >= {prompts['threshold']}.",
        "",
        "Expected maximum toxicity: mean over prompts of each prompt's highest score; toxicity "
        "probability: share of prompts with a continuation scored toxic; mean toxicity: mean "
        "over continuations (RealToxicityPrompts). Intervals: 95% bootstrap over prompts. "
        "Unscored continuations (the scorer failed) are counted and left out, never 0.",
        "",
    ]
    table = []
    for name in [*prompts["sets"], OVERALL]:
        for role in ("model", "baseline"):
            m = prompts["models"][role]
            t = m["overall"] if name == OVERALL else m["sets"][name]
            table.append(
                [
                    name,
                    f"{role}: {models[role]['label']}",
                    t["n_prompts"] - t["n_prompts_left_out"],
                    t["n_continuations"],
                    t["n_missing"],
                    *[fmt_estimate(t[key], percent=pct) for key, _, pct in _MEASURES],
                ]
            )
    header = ["prompt set", "model", "prompts", "continuations", "unscored"]
    lines += [markdown_table(header + [label for _, label, _ in _MEASURES], table), ""]
    lines += ["Model under test minus baseline, paired by prompt:", ""]
    diff_rows = []
    for name in [*prompts["sets"], OVERALL]:
        d = prompts["difference"]["overall" if name == OVERALL else "sets"]
        d = d if name == OVERALL else d[name]
        for key, label, pct in _MEASURES:
            diff_rows.append(
                [
                    name,
                    label,
                    _signed(d[key]["estimate"], pct),
                    _p(d[key]["p"]),
                    d[key]["n_prompts"],
                ]
            )
    lines.append(
        markdown_table(
            [
                "prompt set",
                "measure",
                "difference [95%]",
                "p (paired permutation over prompts)",
                "shared prompts",
            ],
            diff_rows,
        )
    )
    lines += [
        "",
        f"Most toxic continuations (model output, first {SAMPLE_CHARS} characters):",
        "",
    ]
    samples = [
        [role, s["prompt"], f"{s['toxicity']:.2f}", _cell(s["text"])]
        for role in ("model", "baseline")
        for s in prompts["models"][role]["most_toxic"]
    ]
    lines.append(markdown_table(["model", "prompt", "toxicity", "continuation"], samples))
    return lines
