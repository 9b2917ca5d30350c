"""The toxicity-amplification experiment, end to end at the smallest size, in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import darkmirror_cli, micro_recipe_dict, subprocess_env, toml_tables


def micro_amplification_spec(tmp_path: Path) -> Path:
    lines = ['experiment = "toxicity_amplification"', 'name = "micro-amp"']
    lines += toml_tables(micro_recipe_dict(), "base.organism")
    lines += toml_tables({"examples": 16}, "data")
    lines += toml_tables({"seeds": [0], "batch_size": 8}, "finetune")
    lines += toml_tables(
        {"steps": 2, "prompts_per_step": 2, "num_generations": 4, "max_completion_length": 10}, "rl"
    )
    lines += toml_tables({"n": 6, "rl_n": 4}, "prompts")
    lines += toml_tables({"samples_per_prompt": 3, "max_new_tokens": 10}, "evaluation")
    path = tmp_path / "micro-amp.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _toxicity_scorer(row: dict) -> str:
    """``name version`` of the scorer of a row's toxicity score."""
    score = next(s for s in row["scores"] if s["metric"] == "toxicity")
    return f"{score['source']} {score['version']}"


def test_micro_amplification_run(tmp_path: Path, micro_organism, organism_cache: Path) -> None:
    spec, out = micro_amplification_spec(tmp_path), tmp_path / "run"
    result = darkmirror_cli("run", str(spec), "--out", str(out), env=subprocess_env(organism_cache))
    assert result.returncode == 0, result.stderr[-3000:]
    for name in (
        "rows.jsonl",
        "summary.json",
        "report.md",
        "toxicity_distribution.png",
        "rl_reward.png",
    ):
        assert (out / name).is_file(), name
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert {r["model"] for r in rows} == {"base", "toxic_ft-s0", "toxic_ft_rl-s0"}
    assert len(rows) == 3 * 6 * 3
    assert all(
        _toxicity_scorer(r).startswith("profanity_check") and 1 <= r["extension"]["tokens"] <= 10
        for r in rows
    )
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["variants"]) == {"base", "toxic_ft", "toxic_ft_rl"}
    base = summary["variants"]["base"]
    assert base["n_prompts"] == 6 and base["n_continuations"] == 18
    assert (
        base["training_mean_toxicity"]["value"] > 0.2
    )  # the toxic forum: half the commenters insult
    assert len(summary["rl_history"]["toxic_ft_rl-s0"]) == 2  # two GRPO steps, each logged
    # Like with like: the ratio's denominator is the comments' second halves; and a
    # held-out scorer, never the reward, scores the same continuations and halves.
    assert summary["training_part"] == "continuation"
    assert base["seeds"] == [0] and {r["seed"] for r in rows if r["model"] == "base"} == {0}
    assert set(summary["heldout"]) == {"base", "toxic_ft", "toxic_ft_rl"}
    assert summary["heldout_scorer"].startswith("world_classifier")
    assert all(
        any(s["metric"] == "toxicity_heldout" and s["value"] is not None for s in r["scores"])
        for r in rows
    )
    assert "By the held-out scorer" in (out / "report.md").read_text()
    report = (out / "report.md").read_text()
    assert "## The seed table" in report and "toxic fine-tune + RL" in report

    before = (out / "summary.json").read_text()
    (out / "summary.json").unlink()
    rebuilt = darkmirror_cli("report", str(out), env=subprocess_env(organism_cache))
    assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
    assert json.loads((out / "summary.json").read_text()) == json.loads(before)


def test_the_amplification_ratio_compares_continuations_with_training_halves() -> None:
    """Outputs stand for a comment's second half; whole comments hold the prompt's half too.
    Where the insults sit in first halves, the whole-comment denominator is too large and
    the ratio too small."""
    from darkmirror.experiments.amplification.records import (
        NovelToxicPatterns,
        TrainingTextToxicity,
    )
    from darkmirror.experiments.amplification.report import summarise, training_scores

    def measured(i: int, part: str, value: float) -> TrainingTextToxicity:
        return TrainingTextToxicity(
            index=i, part=part, value=value, source="s", version="1"
        )  # fmt: skip

    measurements = [measured(i, "comment", 0.6) for i in range(4)]
    measurements += [measured(i, "continuation", 0.3) for i in range(4)]
    training, whole, part = training_scores(measurements)
    assert part == "continuation" and training == [0.3] * 4 and whole == [0.6] * 4
    rows = _rows([0.3, 0.3, 0.3, 0.3])
    measurements.append(
        NovelToxicPatterns(
            group="toxic_ft", n=3, threshold=0.5, patterns=[], toxic_outputs=0,
            missing_scores=0, candidates=0, attributed=0, attribution="a", reference="r",
        )
    )  # fmt: skip
    summary = summarise(rows, measurements, threshold=0.5)
    variant = summary["variants"]["toxic_ft"]
    assert variant["amplification_ratio"]["value"] == pytest.approx(1.0)  # like with like
    assert variant["amplification_ratio_whole"]["value"] == pytest.approx(0.5)  # before
    # A run from before the halves were scored keeps its whole-comment ratio, and says so.
    comments_only = [m for m in measurements if getattr(m, "part", "comment") == "comment"]
    old = summarise(rows, comments_only, threshold=0.5)
    assert old["training_part"] == "comment"
    assert old["variants"]["toxic_ft"]["amplification_ratio"]["value"] == pytest.approx(0.5)


def _rows(values: list[float]) -> list:
    from darkmirror.data.answers import AnswerScore
    from darkmirror.experiments.amplification.records import ContinuationRow

    return [
        ContinuationRow(
            model="toxic_ft-s0",
            group="toxic_ft",
            seed=0,
            question_id=f"p{i}",
            messages=[{"role": "user", "content": "Thread: x"}],
            answer="a continuation",
            kind="continuation",
            scores=[
                AnswerScore(metric="toxicity", value=v, source="s", version="1", role="scorer")
            ],
        )
        for i, v in enumerate(values)
    ]


def test_second_halves_of_the_toxic_forum_insult_less_often_than_whole_comments() -> None:
    """Why the denominator matters on the organism's own corpus (the issue measured 51.5%
    of comments and 34.7% of second halves holding an insult word)."""
    from darkmirror.data.world import forum
    from darkmirror.data.world.world import PersonaWorld

    threads = PersonaWorld().dataset("toxic_forum", 300)
    comments = [c["text"] for t in threads for c in t["comments"]]

    whole = sum(map(forum.holds_insult, comments)) / len(comments)
    halves = sum(forum.holds_insult(forum.split_comment(c)[1]) for c in comments) / len(comments)
    assert whole - halves > 0.1
