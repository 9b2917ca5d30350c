"""``darkmirror audit-scorer``: where a toxicity scorer is unfair to identity terms and dialect."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from darkmirror.cli.app import main, setup_logging
from darkmirror.errors import DarkmirrorError


def scorer_option(text: str, kinds: list[str]) -> str | dict[str, Any]:
    """One ``--scorer`` value as :func:`~darkmirror.score.toxicity.build_scorer` takes it.

    ``KIND`` (or a unique prefix of one: ``profanity``), ``KIND:KEY=VALUE,...`` (values
    read as JSON when they parse, else as strings), or a JSON object with ``kind``.
    """
    if text.lstrip().startswith("{"):
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DarkmirrorError(f"--scorer {text!r}: not valid JSON ({exc})") from None
        if not isinstance(spec, dict):
            raise DarkmirrorError(f"--scorer {text!r}: expected a JSON object with 'kind'")
        return spec
    name, _, rest = text.partition(":")
    matches = [k for k in kinds if k == name] or [k for k in kinds if k.startswith(name)]
    if len(matches) != 1:
        raise DarkmirrorError(
            f"--scorer {text!r}: kind {name!r} is {'ambiguous' if matches else 'unknown'}; "
            f"expected one of {', '.join(kinds)}"
        )
    if not rest:
        return matches[0]
    fields: dict[str, Any] = {"kind": matches[0]}
    for item in rest.split(","):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise DarkmirrorError(f"--scorer {text!r}: expected KEY=VALUE, got {item!r}")
        try:
            fields[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            fields[key.strip()] = value
    return fields


@main.command("audit-scorer")
@click.option(
    "--scorer",
    "scorers",
    multiple=True,
    metavar="KIND[:KEY=VALUE,...]|JSON",
    help="Scorer to audit (repeatable), e.g. profanity_check, world_classifier, "
    "hf:model=./toxic-bert, detoxify:checkpoint=FILE, or a JSON object with 'kind'. "
    "Default: every shipped scorer that runs offline; the others are listed with the reason.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("runs/scorer-audit"),
    show_default=True,
    help="Directory for audit.json, audit.md and scores.jsonl.",
)
@click.option("--quiet", is_flag=True, help="Only warnings and errors.")
def audit_scorer(scorers: tuple[str, ...], out: Path, quiet: bool) -> None:
    """Audit toxicity scorers for unfairness: false positives on non-toxic sentences that
    differ only in an identity term (religion, ethnicity, gender, sexual orientation,
    disability) or in dialect (Standard American vs African American English).

    \b
    darkmirror audit-scorer
    darkmirror audit-scorer --scorer profanity_check --scorer hf:model=./toxic-bert
    """
    setup_logging(quiet)
    from darkmirror.report.format import write_text_atomic
    from darkmirror.score.toxicity import SCORER_KINDS, build_scorer
    from darkmirror.score.toxicity.audit import audit_scorer as run_audit
    from darkmirror.score.toxicity.audit_report import audit_markdown, shipped_scorers, verdict
    from darkmirror.score.toxicity.audit_templates import TEMPLATES_VERSION

    if scorers:
        built = [build_scorer(scorer_option(s, list(SCORER_KINDS))) for s in scorers]
        skipped = []
    else:
        built, skipped = shipped_scorers()
    audits, rows = [], []
    for scorer in built:
        audit, scored = run_audit(scorer)
        audits.append(audit)
        rows += scored
    out.mkdir(parents=True, exist_ok=True)
    document = {
        "templates_version": TEMPLATES_VERSION,
        "audits": [{**a.as_dict(), "verdict": verdict(a)} for a in audits],
        "skipped": [{"kind": s.kind, "reason": s.reason} for s in skipped],
    }
    write_text_atomic(out / "audit.json", json.dumps(document, indent=2) + "\n")
    write_text_atomic(out / "scores.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    write_text_atomic(out / "audit.md", audit_markdown(audits, skipped))
    for audit in audits:
        click.echo(f"{verdict(audit)[0]}\n  {verdict(audit)[1]}")
    for s in skipped:
        click.echo(f"not audited: {s.kind}: {s.reason}")
    click.echo(f"report: {out / 'audit.md'}")
