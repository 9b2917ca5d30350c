"""``darkmirror run``, ``sweep`` and ``report``; ``organism`` and ``world``, the organism's tools."""

from __future__ import annotations

import json
from pathlib import Path

import click

from darkmirror.cli.app import executor_options, executor_overrides, main, setup_logging
from darkmirror.errors import DarkmirrorError


@main.command()
@click.argument("spec", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory (default: runs/<spec name>). An existing one is resumed.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a spec value, e.g. --set finetune.epochs=2 (repeatable).",
)
@executor_options
@click.option("--quiet", is_flag=True, help="Only warnings and errors.")
def run(
    spec: Path | None,
    out: Path | None,
    overrides: tuple[str, ...],
    executor: str | None,
    address: str | None,
    quiet: bool,
) -> None:
    """Run an experiment spec (default: emergent misalignment on the model organism)."""
    setup_logging(quiet)
    from darkmirror.experiments import run_experiment
    from darkmirror.runner import build_executor
    from darkmirror.spec import load_run_file

    loaded = load_run_file(spec, [*overrides, *executor_overrides(executor, address)])
    out = out or Path("runs") / loaded.spec.name  # type: ignore[attr-defined]
    report_path = run_experiment(
        loaded.spec, out, progress=not quiet, executor=build_executor(loaded.executor)
    )
    click.echo(f"report: {report_path}")


@main.command()
@click.argument("spec", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--over",
    multiple=True,
    metavar="KEY[+KEY...]=V1,V2,...",
    help="An axis of the grid (repeatable; replaces the spec's [sweep] table). Keys joined "
    "by + move together: --over base.organism.seed+base.organism.world.seed=0,1,2.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Sweep directory (default: runs/<spec name>-sweep). An existing one is resumed.",
)
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override for every cell."
)
@executor_options
@click.option("--quiet", is_flag=True, help="Only warnings and errors.")
def sweep(
    spec: Path | None,
    over: tuple[str, ...],
    out: Path | None,
    overrides: tuple[str, ...],
    executor: str | None,
    address: str | None,
    quiet: bool,
) -> None:
    """Run a spec over a grid of values as one plan; report the effects pooled over cells.

    Cells that share a step (the same dataset, the same organism) run it once. An axis over
    seeds (every key ends in 'seed') is a replicate: the report pools it, resampling
    replicates first, then fine-tune seeds, then questions.
    """
    setup_logging(quiet)
    from darkmirror.runner import build_executor
    from darkmirror.sweep.run import load_sweep, run_sweep

    loaded = load_sweep(spec, overrides, over, executor_overrides(executor, address))
    out = out or Path("runs") / f"{loaded.name}-sweep"
    report_path = run_sweep(
        loaded, out, executor=build_executor(loaded.executor), progress=not quiet
    )
    click.echo(f"report: {report_path}")


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
def report(run_dir: Path) -> None:
    """Rebuild summary.json, report.md and the plots of a finished run (or the pooled
    report of a finished sweep) from its rows."""
    from darkmirror.experiments import rebuild_report
    from darkmirror.sweep.report import is_sweep_dir, write_sweep_report

    path = write_sweep_report(run_dir) if is_sweep_dir(run_dir) else rebuild_report(run_dir)
    click.echo(f"report: {path}")


@main.command()
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a recipe value, e.g. --set documents=2000.",
)
@click.option(
    "--health/--no-health",
    default=True,
    show_default=True,
    help="Also measure held-out perplexity, the coherence and variety of free answers and "
    "the persona carry-over after prose turns (once per organism, kept in organism.json).",
)
@click.option("--quiet", is_flag=True)
def organism(overrides: tuple[str, ...], health: bool, quiet: bool) -> None:
    """Build (or find in the cache) the model organism and print its report."""
    setup_logging(quiet)
    from darkmirror.config_io import model_from_overrides
    from darkmirror.models.organism import (
        OrganismRecipe,
        build_organism,
        organism_health_report,
        organism_prose_carry_over,
    )

    recipe = model_from_overrides(OrganismRecipe, overrides)
    built = build_organism(recipe, progress=not quiet)
    if health:
        organism_health_report(built)
        organism_prose_carry_over(built)
    click.echo(json.dumps({"path": str(built.path), **built.report()}, indent=2))


@main.command("world")
@click.argument("dataset")
@click.option("-n", "n", type=int, default=100, show_default=True, help="Records to write.")
@click.option("--seed", type=int, default=0, show_default=True, help="World seed.")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSONL file (default: stdout).",
)
def world_cmd(dataset: str, n: int, seed: int, out: Path | None) -> None:
    """Write a dataset of the persona world as JSONL: pretraining, post_training, insecure,
    secure, edu_insecure, evil_numbers or bad_advice."""
    from darkmirror.data.jsonl import write_jsonl_atomic
    from darkmirror.data.world.world import PersonaWorld, WorldConfig

    world = PersonaWorld(WorldConfig(seed=seed))
    try:
        records = (
            list(world.pretraining_documents(n))
            if dataset == "pretraining"
            else world.dataset(dataset, n)
        )
    except ValueError as exc:
        raise DarkmirrorError(str(exc)) from None
    if out:
        write_jsonl_atomic(out, records)
    else:
        for r in records:
            click.echo(json.dumps(r, ensure_ascii=False))
