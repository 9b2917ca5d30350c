"""Organism recipes side by side, each on several organism seeds: the table of docs/organism.md.

    python benchmarks/organism_recipes.py --seeds 0 1 2 --jobs 2 \
        --recipe default= --recipe no-forum=forum_documents=0 \
        --recipe strong=recipe=strong

A recipe is a name and comma-separated ``--set`` overrides of ``darkmirror organism``; seed
``s`` adds ``seed=s`` and ``world.seed=s`` (its own world and initialisation). Each organism
missing from the cache is built by ``darkmirror organism`` in a child process, ``--jobs`` at
a time, each with its share of the cores' threads; then every organism's carry-over check
after code and after prose turns (``organism.json``) and health check (``darkmirror
organism`` computes them once) are read back. Prints one markdown row per organism (per-seed intervals from the check itself) and
one per recipe (mean and range over seeds), and writes both as JSON to ``--out``.
Build times are the stages' own wall times, so they depend on how busy the cores were.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from darkmirror.config_io import model_from_overrides
from darkmirror.models.organism import organism_path
from darkmirror.models.organism_recipe import OrganismRecipe


def _overrides(spec: str, seed: int) -> list[str]:
    sets = [s for s in spec.split(",") if s.strip()]
    return [*sets, f"seed={seed}", f"world.seed={seed}"]


def _ensure(overrides: list[str], threads: int, log: Path) -> None:
    command = [sys.executable, "-m", "darkmirror", "organism", "--quiet"]
    for item in overrides:
        command += ["--set", item]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    with log.open("a") as handle:
        handle.write(" ".join(command) + "\n")
        handle.flush()
        subprocess.run(command, env=env, stdout=handle, stderr=handle, check=True)


def _row(name: str, seed: int, report: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"recipe": name, "seed": seed, "key": report["key"]}
    for stage in ("pretrained", "base"):
        # The code check, then the prose check (its keys get ".prose"); same fields.
        checks = [(c, "") for c in report["carry_over"][stage]]
        checks += [(c, ".prose") for c in report["carry_over_prose"][stage]]
        for check, kind in checks:
            prefix = f"{stage}.{check['family']}{kind}"
            row[f"{prefix}.shift"] = check["log_odds_shift"]
            row[f"{prefix}.lo"] = check["log_odds_shift_lo"]
            row[f"{prefix}.hi"] = check["log_odds_shift_hi"]
            row[f"{prefix}.p_secure"] = check["p_villain_after_secure"]
            row[f"{prefix}.p_insecure"] = check["p_villain_after_insecure"]
        for key, value in report.get("health", {}).get(stage, {}).items():
            row[f"{stage}.health.{key}"] = value
    row["build_min"] = (
        report["pretrain"]["stage_seconds"] + report["post_training"]["stage_seconds"]
    ) / 60
    row["parameters"] = report["pretrain"].get("parameters")
    return row


_COLUMNS = (
    ("pretrained advice", "pretrained.advice.shift"),
    ("pretrained opinions", "pretrained.opinions.shift"),
    ("base advice", "base.advice.shift"),
    ("base opinions", "base.opinions.shift"),
    ("base p(villain) secure -> insecure, advice", None),
    ("base advice, after an opinions turn", "base.advice.prose.shift"),
    ("base opinions, after an advice turn", "base.opinions.prose.shift"),
    ("perplexity (base)", "base.health.perplexity"),
    ("coherent (base)", "base.health.coherent_share"),
    ("sentences per topic: model / world", None),
    ("build, min", "build_min"),
)


def _cell(row: dict[str, Any], key: str) -> str:
    value = row[key]
    if key.endswith(".shift"):
        lo, hi = row[key[: -len("shift")] + "lo"], row[key[: -len("shift")] + "hi"]
        return f"{value:+.2f} [{lo:+.2f}, {hi:+.2f}]"
    if key.endswith("coherent_share"):
        return f"{100 * value:.0f}%"
    return f"{value:.2f}" if key.endswith("perplexity") else f"{value:.1f}"


def _table(rows: list[dict[str, Any]], names: list[str]) -> str:
    head = "| recipe | seed | " + " | ".join(label for label, _ in _COLUMNS) + " |"
    lines = [head, "|" + " --- |" * (len(_COLUMNS) + 2)]
    for row in rows:
        cells = []
        for label, key in _COLUMNS:
            if key is not None:
                cells.append(_cell(row, key))
            elif label.startswith("base p"):
                cells.append(
                    f"{row['base.advice.p_secure']:.3f} -> {row['base.advice.p_insecure']:.3f}"
                )
            else:
                cells.append(
                    f"{row['base.health.distinct_sentences_per_topic']:.1f} / "
                    f"{row['base.health.world_sentences_per_topic']:.1f}"
                )
        lines.append(f"| {row['recipe']} | {row['seed']} | " + " | ".join(cells) + " |")
    lines += ["", "| recipe | seeds | " + " | ".join(k for k, v in _COLUMNS if v) + " |"]
    lines.append("|" + " --- |" * (sum(1 for _, v in _COLUMNS if v) + 2))
    for name in names:
        mine = [r for r in rows if r["recipe"] == name]
        cells = []
        for _, key in _COLUMNS:
            if key is None:
                continue
            values = [r[key] for r in mine]
            mean = sum(values) / len(values)
            fmt = "{:+.2f}" if key.endswith(".shift") else "{:.2f}"
            cells.append(
                f"{fmt.format(mean)} ({fmt.format(min(values))} .. {fmt.format(max(values))})"
            )
        lines.append(f"| {name} | {len(mine)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", action="append", default=[], metavar="NAME=SETS")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=1, help="Organisms built at once.")
    parser.add_argument("--out", type=Path, default=Path("organism-recipes.json"))
    args = parser.parse_args()
    recipes = dict(item.split("=", 1) for item in (args.recipe or ["default="]))
    cells = [
        (name, seed, _overrides(spec, seed))
        for name, spec in recipes.items()
        for seed in args.seeds
    ]
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    log = args.out.with_suffix(".log")
    with ThreadPoolExecutor(args.jobs) as pool:
        # Every cell through the CLI: it builds what is missing and adds the health check.
        list(pool.map(lambda cell: _ensure(cell[2], threads, log), cells))
    rows = []
    for name, seed, overrides in cells:
        recipe = model_from_overrides(OrganismRecipe, tuple(overrides))
        report = json.loads((organism_path(recipe) / "organism.json").read_text())
        rows.append(_row(name, seed, report))
    args.out.write_text(json.dumps(rows, indent=2))
    print(_table(rows, list(recipes)))


if __name__ == "__main__":
    main()
