"""``darkmirror sweep`` on micro organisms: one plan, shared steps run once, a pooled report,
and a sweep that resumes."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import darkmirror_cli, subprocess_env
from test_cli import micro_spec


def _distinct_steps(out: Path) -> set[str]:
    return {p.parent.name for p in (out / "steps").glob("*/step.json")}


def test_a_sweep_over_two_organism_seeds_shares_steps_and_pools_them(
    tmp_path: Path, micro_organism, organism_cache: Path
) -> None:
    spec, out, env = micro_spec(tmp_path), tmp_path / "sweep", subprocess_env(organism_cache)
    # Only the initialisation seed varies: both organisms live in the same world, so the
    # two datasets of that world are declared by both cells and built once.
    result = darkmirror_cli(
        "sweep", str(spec), "--over", "base.organism.seed=0,1", "--out", str(out), env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 cells declare 16 steps; 14 distinct (2 shared between cells)" in result.stderr

    record = json.loads((out / "sweep.json").read_text())
    assert [c["id"] for c in record["cells"]] == ["organism-0", "organism-1"]
    assert record["cells"][1]["overrides"] == ["base.organism.seed=1"]
    assert (record["steps_declared"], record["steps_unique"]) == (16, 14)
    stored = _distinct_steps(out)
    assert len(stored) == 12  # 14 distinct, less the two organisms (kept in the cache)
    assert len([s for s in stored if s.startswith("dataset-")]) == 2

    for cell in ("organism-0", "organism-1"):
        cell_dir = out / "cells" / cell
        assert (cell_dir / "report.md").is_file() and (cell_dir / "summary.json").is_file()
        assert json.loads((cell_dir / "spec.json").read_text())["base"]["organism"]["seed"] == (
            0 if cell == "organism-0" else 1
        )
    # Each cell is the run its spec would give alone.
    alone = darkmirror_cli(
        "run", str(spec), "--set", "base.organism.seed=1", "--out", str(tmp_path / "alone"), env=env
    )
    assert alone.returncode == 0, alone.stderr[-3000:]
    assert (out / "cells" / "organism-1" / "rows.jsonl").read_text() == (
        tmp_path / "alone" / "rows.jsonl"
    ).read_text()

    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == {"declared": 16, "distinct": 14, "shared": 2}
    pooled = summary["pooled"]["all cells"]
    assert pooled["units"] == ["organism-0", "organism-1"]
    effects = {(e["metric"], e["a"], e["b"]): e for e in pooled["effects"]}
    assert set(effects) == {
        ("misaligned", "insecure", "secure"),
        ("log_odds", "insecure", "secure"),
        ("misaligned", "insecure", "base"),
        ("misaligned", "secure", "base"),
    }
    log_odds = effects[("log_odds", "insecure", "secure")]
    assert log_odds["n_units"] == 2 and log_odds["estimate"]["n_clusters"] == 2
    # The pooled value is the mean of the organisms' own values.
    per_unit = [log_odds["per_unit"][u]["value"] for u in ("organism-0", "organism-1")]
    assert log_odds["estimate"]["value"] == sum(per_unit) / 2
    report = (out / "report.md").read_text()
    assert "insecure - secure" in report and "of 2 (" in report

    # Rerun: every step is reused, and the report is rebuilt the same from the cells.
    again = darkmirror_cli(
        "sweep", str(spec), "--over", "base.organism.seed=0,1", "--out", str(out), env=env
    )
    assert again.returncode == 0 and ": running" not in again.stderr, again.stderr[-2000:]
    assert json.loads((out / "summary.json").read_text()) == summary
    rebuilt = darkmirror_cli("report", str(out), env=env)
    assert rebuilt.returncode == 0 and (out / "report.md").read_text() == report


def test_sweep_input_errors_exit_2_with_a_clear_message(
    tmp_path: Path, organism_cache: Path
) -> None:
    spec, env = micro_spec(tmp_path), subprocess_env(organism_cache)
    nothing = darkmirror_cli("sweep", str(spec), "--out", str(tmp_path / "a"), env=env)
    assert nothing.returncode == 2 and "nothing to sweep" in nothing.stderr
    bad = darkmirror_cli("sweep", str(spec), "--over", "finetune.seeds", env=env)
    assert bad.returncode == 2 and "must look like KEY=V1,V2" in bad.stderr
    wrong = darkmirror_cli(
        "sweep", str(spec), "--over", "finetune.epochs=1,abc", "--out", str(tmp_path / "b"), env=env
    )
    assert wrong.returncode == 2 and "finetune.epochs" in wrong.stderr, wrong.stderr[-1000:]
    assert not (tmp_path / "b" / "steps").exists()  # every cell is validated before any runs
