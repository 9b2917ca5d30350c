"""The ``darkmirror`` command.

Errors a user can fix (bad spec, bad dataset line, unreachable model) print one line and
exit with status 2; Ctrl-C exits with 130 and leaves every finished step in place, so the
same command resumes.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

from darkmirror.errors import EXIT_USER_ERROR, DarkmirrorError, require_file

log = logging.getLogger("darkmirror")


def _setup_logging(quiet: bool) -> None:
    # Progress lines from darkmirror only: other libraries' INFO chatter (a GPU machine's
    # "JAX version ... available", say) would bury them, and break the one-line errors.
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    logging.getLogger("darkmirror").setLevel(logging.WARNING if quiet else logging.INFO)
    # transformers and TRL log configuration chatter at warning level on every load.
    import transformers

    transformers.logging.set_verbosity_error()


class _Group(click.Group):
    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except DarkmirrorError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            click.echo(
                "\ninterrupted: finished steps are kept; run the same command again to resume",
                err=True,
            )
            sys.exit(130)


@click.group(cls=_Group)
@click.version_option(package_name="darkmirror")
def main() -> None:
    """Measure how training data corrupts language models beyond what the data shows."""


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
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    help="Where the steps run: in this process (default) or on a Ray cluster "
    "(pip install 'darkmirror[ray]'). Same as [executor] kind in the spec.",
)
@click.option(
    "--address",
    help="Ray cluster to join (ray://HOST:10001 or auto); default: a local cluster. Run and "
    "cache directories must be on storage every worker sees.",
)
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
    _setup_logging(quiet)
    from darkmirror.experiments import run_experiment
    from darkmirror.runner import build_executor
    from darkmirror.spec import load_run_file

    loaded = load_run_file(spec, [*overrides, *_executor_overrides(executor, address)])
    out = out or Path("runs") / loaded.spec.name  # type: ignore[attr-defined]
    report_path = run_experiment(
        loaded.spec, out, progress=not quiet, executor=build_executor(loaded.executor)
    )
    click.echo(f"report: {report_path}")


def _executor_overrides(executor: str | None, address: str | None) -> list[str]:
    """``--executor``/``--address`` as overrides of the spec file's ``[executor]`` table."""
    out = [f"executor.kind={json.dumps(executor)}"] if executor else []
    if address:
        out.append(f"executor.address={json.dumps(address)}")
    return out


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
def report(run_dir: Path) -> None:
    """Rebuild summary.json, report.md and the plots of a finished run from its rows."""
    from darkmirror.experiments import rebuild_report

    click.echo(f"report: {rebuild_report(run_dir)}")


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
    "optional judge scores; or a darkmirror rows.jsonl) instead of a model to sample.",
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

    Exit status: 0 (gate passes, or not enforced), 1 (regression), 2 (bad input),
    3 (too few answers judged to decide).
    """
    _setup_logging(quiet)
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


@main.command()
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The certificate (JSON); the findings go beside it (<name>.findings.jsonl).",
)
@click.option(
    "--policy",
    "policy",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Policy TOML: detector settings and pass/fail rules (default: darkmirror's).",
)
@click.option(
    "--canary",
    is_flag=True,
    help="Also fine-tune a reference model on a sample and measure the behavioural shift.",
)
@click.option(
    "--canary-model",
    default="organism",
    show_default=True,
    help="Reference model of the canary: 'organism', a hub id or a directory.",
)
@click.option(
    "--canary-samples",
    type=int,
    default=1000,
    show_default=True,
    help="Records the canary trains on.",
)
@click.option(
    "--sign-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Ed25519 private key (PEM) to sign the certificate with.",
)
@click.option("--quiet", is_flag=True, help="Only warnings and errors.")
def scan(
    data: Path,
    out: Path,
    policy: Path | None,
    canary: bool,
    canary_model: str,
    canary_samples: int,
    sign_key: Path | None,
    quiet: bool,
) -> None:
    """Scan a training set (JSONL, CSV or Parquet) and write a certificate.

    Exit status: 0 when every policy rule passes, 1 when a rule fails, 2 for bad input.
    """
    _setup_logging(quiet)
    from darkmirror.scan.canary import CanarySettings
    from darkmirror.scan.certify import certify, findings_path_for

    settings = (
        CanarySettings(reference=canary_model, sample_size=canary_samples) if canary else None
    )
    cert = certify(
        data, out, policy_path=policy, canary=settings, sign_key=sign_key, progress=not quiet
    )
    results = cert["results"]
    scanned = max(1, cert["dataset"]["scanned"])
    click.echo(
        f"{cert['dataset']['records']} records ({cert['dataset']['malformed']} malformed), "
        f"{results['flagged_records']} flagged, in {results['seconds']:.1f} s"
    )
    for name, counts in results["flagged"].items():
        click.echo(
            f"  {name:<12} {counts['low']:>7} flagged ({100 * counts['low'] / scanned:.1f}%)"
        )
    for rule in cert["verdict"]["rules"]:
        mark = "pass" if rule["passed"] else "FAIL"
        click.echo(
            f"  [{mark}] {json.dumps(rule['rule'])}"
            + (f" ({rule['note']})" if rule.get("note") else "")
        )
    click.echo(f"certificate: {out}\nfindings: {findings_path_for(out)}")
    click.echo("verdict: " + ("PASS" if cert["verdict"]["passed"] else "FAIL"))
    if not cert["verdict"]["passed"]:
        sys.exit(1)


@main.command()
@click.argument("cert", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("data", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The signer's public key (PEM or base64); the certificate must be signed by it.",
)
def verify(cert: Path, data: Path, public_key: Path | None) -> None:
    """Check a certificate: the dataset is the one certified, the certificate was not edited,
    and its signature is valid (for --public-key, when given). Exit 0 when all hold, 1 when
    one fails."""
    from darkmirror.scan.certificate import verify_certificate

    result = verify_certificate(cert, data, public_key)
    for name, ok, detail in result.checks:
        click.echo(f"[{'ok' if ok else 'FAIL'}] {name}: {detail}")
    click.echo("verified" if result.ok else "NOT verified")
    if not result.ok:
        sys.exit(1)


@main.command()
@click.argument("private_key", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("public_key", type=click.Path(dir_okay=False, path_type=Path))
def keygen(private_key: Path, public_key: Path) -> None:
    """Write a new Ed25519 key pair for signing certificates (the private key mode 0600)."""
    from darkmirror.scan.certificate import generate_keypair

    click.echo(f"public key (base64): {generate_keypair(private_key, public_key)}")


@main.command()
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a recipe value, e.g. --set documents=2000.",
)
@click.option("--quiet", is_flag=True)
def organism(overrides: tuple[str, ...], quiet: bool) -> None:
    """Build (or find in the cache) the model organism and print its report."""
    _setup_logging(quiet)
    from darkmirror.config_io import model_from_overrides
    from darkmirror.models.organism import OrganismRecipe, build_organism

    recipe = model_from_overrides(OrganismRecipe, overrides)
    built = build_organism(recipe, progress=not quiet)
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
