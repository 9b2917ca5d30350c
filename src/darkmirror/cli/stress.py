"""``darkmirror stress``: a model or endpoint against its baseline, as a release gate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from darkmirror.cli.app import main, setup_logging
from darkmirror.errors import DarkmirrorError, require_file


def _model_overrides(
    role: str,
    ref: str | None,
    adapter: str | None,
    url: str | None,
    key_env: str | None,
    answers: Path | None = None,
) -> list[str]:
    """``--model``-style options as spec overrides (strings JSON-quoted, so an id such as
    ``123`` or ``true`` stays a string)."""
    if answers is not None:
        if ref or adapter or url or key_env:
            raise DarkmirrorError(f"--{role}-answers replaces --{role} and its options")
        require_file(answers)
        return [f"{role}.kind={json.dumps('answers')}", f"{role}.path={json.dumps(str(answers))}"]
    if ref is None:
        if adapter or url or key_env:
            raise DarkmirrorError(f"--{role}-adapter/--{role}-url/--{role}-key-env need --{role}")
        return []
    q = json.dumps
    if url:
        out = [
            f"{role}.kind={q('openai')}",
            f"{role}.model={q(ref)}",
            f"{role}.endpoint.base_url={q(url)}",
        ]
        if key_env:
            out.append(f"{role}.endpoint.api_key_env={q(key_env)}")
        if adapter:
            raise DarkmirrorError(f"--{role}-adapter applies to local models, not to --{role}-url")
        return out
    if key_env:
        raise DarkmirrorError(f"--{role}-key-env needs --{role}-url")
    if ref == "organism":
        return [f"{role}.kind={q('organism')}"]
    out = [f"{role}.kind={q('hf')}", f"{role}.id={q(ref)}"]
    if adapter:
        out.append(f"{role}.adapter={q(adapter)}")
    return out


@main.command()
@click.argument("spec", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--model",
    "model",
    help="Model under test: hub id, local directory, 'organism', or with --model-url the served model name.",
)
@click.option("--model-adapter", help="PEFT adapter on top of --model.")
@click.option(
    "--model-url",
    help="OpenAI-compatible base URL serving --model (e.g. http://localhost:8000/v1).",
)
@click.option("--model-key-env", help="Environment variable holding the endpoint's API key.")
@click.option(
    "--baseline", "baseline", help="Baseline: same forms as --model (usually the base model)."
)
@click.option("--baseline-adapter")
@click.option("--baseline-url")
@click.option("--baseline-key-env")
@click.option(
    "--model-answers",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Model under test as an answer file (CSV/JSONL: question, answer, question_id, "
    "optional judge scores; a darkmirror rows.jsonl; or an Inspect eval log, .eval/.json) "
    "instead of a model to sample.",
)
@click.option(
    "--baseline-answers",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Baseline as an answer file, in the same forms as --model-answers.",
)
@click.option(
    "--fail-on-regression",
    is_flag=True,
    help="Exit 1 when the model under test is significantly worse than the baseline, 3 when "
    "too few answers were judged to decide, 0 otherwise.",
)
@click.option(
    "--alpha",
    type=float,
    help="Significance level of the release gate (default 0.05, Bonferroni over measures).",
)
@click.option(
    "--questions",
    "questions",
    multiple=True,
    help="Question set: YAML file or builtin:NAME (repeatable).",
)
@click.option(
    "--prompts",
    "prompts",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Prompt set for the toxicity stress test (repeatable): RealToxicityPrompts JSONL, or "
    "plain text with one prompt per line. Without --questions, no questions are asked.",
)
@click.option(
    "--judge", type=click.Choice(["world", "local", "openai"]), help="Who labels the answers."
)
@click.option("--judge-model", help="Local judge: hub id or directory; openai judge: model name.")
@click.option("--judge-url", help="OpenAI-compatible base URL of the judge.")
@click.option("--judge-key-env", help="Environment variable holding the judge's API key.")
@click.option("--samples", type=int, help="Answers per paraphrase (default: each question's own).")
@click.option(
    "--out",
    "out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory (default: runs/<name>).",
)
@click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override any spec value."
)
@click.option("--quiet", is_flag=True, help="Only warnings and errors.")
def stress(
    spec: Path | None,
    model: str | None,
    model_adapter: str | None,
    model_url: str | None,
    model_key_env: str | None,
    baseline: str | None,
    baseline_adapter: str | None,
    baseline_url: str | None,
    baseline_key_env: str | None,
    model_answers: Path | None,
    baseline_answers: Path | None,
    fail_on_regression: bool,
    alpha: float | None,
    questions: tuple[str, ...],
    prompts: tuple[Path, ...],
    judge: str | None,
    judge_model: str | None,
    judge_url: str | None,
    judge_key_env: str | None,
    samples: int | None,
    out: Path | None,
    overrides: tuple[str, ...],
    quiet: bool,
) -> None:
    """Stress-test a fine-tuned model or an endpoint against its baseline: misaligned rate,
    coherence and toxicity of their answers, and the difference with its significance.

    \b
    darkmirror stress --model ./my-finetune --baseline Qwen/Qwen2.5-0.5B-Instruct \\
        --questions ../em-data/evaluation/first_plot_questions.yaml \\
        --judge local --judge-model ./judge-model
    darkmirror stress --model-answers finetune.csv --baseline-answers base.csv \\
        --fail-on-regression
    darkmirror stress --model my-chat --model-url http://localhost:8000/v1 \\
        --baseline my-base --baseline-url http://localhost:8001/v1 \\
        --prompts rtp_insult.txt --fail-on-regression

    Exit status: 0 (gate passes, or not enforced), 1 (regression), 2 (bad input),
    3 (too few answers judged to decide).
    """
    setup_logging(quiet)
    from darkmirror.config_io import load_toml_model, model_from_overrides
    from darkmirror.experiments import run_experiment
    from darkmirror.experiments.stress import StressSpec, gate_exit_code

    q = json.dumps
    options = _model_overrides(
        "model", model, model_adapter, model_url, model_key_env, model_answers
    )
    options += _model_overrides(
        "baseline", baseline, baseline_adapter, baseline_url, baseline_key_env, baseline_answers
    )
    if fail_on_regression:
        options.append("gate.fail_on_regression=true")
    if alpha is not None:
        options.append(f"gate.alpha={alpha}")
    if questions:
        options.append(f"questions={json.dumps(list(questions))}")
    if prompts:
        for path in prompts:
            require_file(path)
        options.append(f"prompts={json.dumps([str(p) for p in prompts])}")
    if judge:
        options.append(f"judge.kind={q(judge)}")
    if judge_model:
        options.append(f"judge.model={q(judge_model)}")
    if judge_url:
        options.append(f"judge.endpoint.base_url={q(judge_url)}")
    if judge_key_env:
        options.append(f"judge.endpoint.api_key_env={q(judge_key_env)}")
    if samples is not None:
        options.append(f"samples_per_paraphrase={samples}")
    all_overrides = [*options, *overrides]
    resolved = (
        load_toml_model(spec, StressSpec, all_overrides)
        if spec
        else model_from_overrides(StressSpec, all_overrides, source="options")
    )
    out = out or Path("runs") / resolved.name
    report_path = run_experiment(resolved, out, progress=not quiet)
    click.echo(f"report: {report_path}")
    status = gate_exit_code(report_path)
    verdict = {0: "pass", 1: "REGRESSION", 3: "UNDECIDED"}[status]
    click.echo(f"gate: {verdict}" + ("" if resolved.gate.fail_on_regression else " (not enforced)"))
    if resolved.gate.fail_on_regression and status:
        sys.exit(status)
