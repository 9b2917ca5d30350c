"""``darkmirror scan``, ``verify`` and ``keygen``: training data checked and certified."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from darkmirror.cli.app import main, setup_logging


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
@click.option(
    "--format",
    "cert_format",
    type=click.Choice(["darkmirror", "in-toto"]),
    default="darkmirror",
    show_default=True,
    help="darkmirror: darkmirror-certificate/1 JSON; in-toto: an in-toto Statement in a "
    "DSSE envelope, signed (needs --sign-key).",
)
@click.option(
    "--sarif",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the code and secrets findings as SARIF 2.1.0 to this file.",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="ray: cut a JSONL file into shards by byte ranges, one Ray task each (pip install "
    "'darkmirror[ray]'); the certificate is the one a local scan writes.",
)
@click.option(
    "--shards", type=click.IntRange(min=1), help="With Ray: shards (default: cluster CPUs)."
)
@click.option("--ray-address", help="With Ray: the cluster (default: start a local one).")
@click.option("--quiet", is_flag=True, help="Only warnings and errors.")
def scan(
    data: Path,
    out: Path,
    policy: Path | None,
    canary: bool,
    canary_model: str,
    canary_samples: int,
    sign_key: Path | None,
    cert_format: str,
    sarif: Path | None,
    executor: str,
    shards: int | None,
    ray_address: str | None,
    quiet: bool,
) -> None:
    """Scan a training set (JSONL, CSV or Parquet) and write a certificate.

    Exit status: 0 when every policy rule passes, 1 when a rule fails or no record could be
    scanned (an empty dataset, or only malformed records: nothing is certified), 2 for bad
    input.
    """
    setup_logging(quiet)
    from darkmirror.data.records import check_dataset_file

    # Checked before anything heavy is imported: a wrong path is answered at once.
    check_dataset_file(data)
    from darkmirror.scan.certify import certify, findings_path_for

    settings = None
    if canary:  # the canary's module brings torch and transformers
        from darkmirror.scan.canary import CanarySettings

        settings = CanarySettings(reference=canary_model, sample_size=canary_samples)
    cert = certify(
        data,
        out,
        policy_path=policy,
        canary=settings,
        sign_key=sign_key,
        cert_format=cert_format,
        sarif=sarif,
        executor=executor,
        shards=shards,
        ray_address=ray_address,
        progress=not quiet,
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
    if sarif is not None:
        click.echo(f"sarif: {sarif}")
    status = cert["verdict"].get("status", "pass" if cert["verdict"]["passed"] else "fail")
    if status == "empty":
        note = cert["verdict"]["rules"][0]["note"]
        click.echo(f"verdict: NOT CERTIFIED ({note})")
    else:
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
    one fails. CERT is darkmirror JSON or an in-toto DSSE envelope (scan --format)."""
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
