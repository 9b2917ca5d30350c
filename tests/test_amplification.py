"""The toxicity-amplification experiment, end to end at the smallest size, in a subprocess."""

from __future__ import annotations

import json
from pathlib import Path

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
    report = (out / "report.md").read_text()
    assert "## The seed table" in report and "toxic fine-tune + RL" in report

    before = (out / "summary.json").read_text()
    (out / "summary.json").unlink()
    rebuilt = darkmirror_cli("report", str(out), env=subprocess_env(organism_cache))
    assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
    assert json.loads((out / "summary.json").read_text()) == json.loads(before)
