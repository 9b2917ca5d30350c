"""`darkmirror scan`: scan a dataset, run the canary if asked, write the certificate."""

from __future__ import annotations

import datetime as dt
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from darkmirror.data.records import check_dataset_file, dataset_sha256
from darkmirror.errors import DarkmirrorError, InputError
from darkmirror.scan.attestation import signed_envelope
from darkmirror.scan.certificate import (
    CERTIFICATE_FORMAT,
    load_private_key,
    seal,
    write_certificate,
)
from darkmirror.scan.policy import (
    Policy,
    evaluate_rules,
    in_policy_file,
    load_policy,
    records_rule,
    verdict,
)
from darkmirror.scan.sarif import sarif_log, write_sarif
from darkmirror.scan.scanner import ScanSettings, scan_file

if TYPE_CHECKING:  # the canary brings torch and transformers: imported only when it runs
    from darkmirror.scan.canary import CanarySettings


CERTIFICATE_FORMATS = ("darkmirror", "in-toto")


def findings_path_for(cert_path: Path) -> Path:
    """The findings file beside a certificate: ``cert.json`` -> ``cert.findings.jsonl``."""
    return cert_path.with_name(f"{cert_path.stem}.findings.jsonl")


def certify(
    data: Path,
    out: Path,
    *,
    policy_path: Path | None = None,
    canary: CanarySettings | None = None,
    sign_key: Path | None = None,
    cert_format: str = "darkmirror",
    sarif: Path | None = None,
    batch_size: int = 512,
    executor: str = "local",
    shards: int | None = None,
    ray_address: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Scan ``data`` and write the certificate to ``out`` and the findings beside it.

    Args:
        data: A JSONL, CSV or Parquet dataset.
        out: The certificate (JSON).
        policy_path: A policy TOML file; None for the default policy.
        canary: Run the canary fine-tune with these settings; None skips it (the
            certificate says so).
        sign_key: An Ed25519 private key (PEM) to sign the certificate with.
        cert_format: ``"darkmirror"`` (``darkmirror-certificate/1`` JSON) or
            ``"in-toto"`` (an in-toto Statement in a DSSE envelope; needs ``sign_key``).
        sarif: Also write the code and secrets findings here, as SARIF 2.1.0.
        batch_size: Records per detector call.
        executor: ``"local"`` (this process) or ``"ray"`` (a JSONL file cut into shards,
            one Ray task each; the same certificate).
        shards: With Ray, shards to cut the file into (None: one per CPU of the cluster).
        ray_address: With Ray, the cluster to connect to (None: start a local one).
        progress: Show progress.

    Returns:
        The sealed certificate.
    """
    # Lazy: the detectors bring bandit, semgrep and scikit-learn; a bad path or policy is
    # reported before they load.
    from darkmirror.scan.detectors import build_detectors

    data = check_dataset_file(data)
    policy: Policy = load_policy(policy_path)
    private_key = load_private_key(sign_key) if sign_key else None  # fail before the scan
    if cert_format not in CERTIFICATE_FORMATS:
        raise DarkmirrorError(
            f"certificate format {cert_format!r}: expected one of {CERTIFICATE_FORMATS}"
        )
    if cert_format == "in-toto" and private_key is None:
        # An unsigned envelope attests nothing a supply-chain verifier would accept.
        raise DarkmirrorError(
            "--format in-toto needs --sign-key: a DSSE envelope is only worth its signature "
            "(--format darkmirror writes an unsigned certificate)"
        )
    try:
        detectors = build_detectors(policy.detectors)
    except InputError as exc:
        raise in_policy_file(exc, policy_path) from None
    findings = findings_path_for(out)
    settings = ScanSettings(
        batch_size=batch_size,
        sample_size=canary.sample_size if canary else 0,
        sample_seed=canary.seed if canary else 0,
        max_record_bytes=policy.max_record_bytes,
    )
    if executor == "ray":
        from darkmirror.scan.distributed import scan_file_on_ray

        result = scan_file_on_ray(
            data,
            detectors,
            policy.detectors,
            findings,
            settings,
            shards=shards,
            address=ray_address,
        )
    elif executor == "local":
        result = scan_file(data, detectors, findings, settings, progress=progress)
    else:
        raise DarkmirrorError(f"executor {executor!r}: expected 'local' or 'ray'")
    rules = [records_rule(result.records, result.scanned)]
    rules += evaluate_rules(
        policy, result.scanned, result.flagged, result.malformed, {d.name for d in detectors}
    )
    canary_result: dict[str, Any] = {"ran": False, "reason": "not requested (--canary)"}
    if canary is not None:
        from darkmirror.scan.canary import canary_rules, run_canary

        canary_result = run_canary(result.sample, canary, progress=progress)
        rules += canary_rules(canary_result, policy.canary)
    stat = data.stat()
    certificate = {
        "format": CERTIFICATE_FORMAT,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "darkmirror_version": metadata.version("darkmirror"),
        "dataset": {
            "name": data.name,
            "bytes": stat.st_size,
            "sha256": dataset_sha256(data),
            "records": result.records,
            "scanned": result.scanned,
            "malformed": result.malformed,
            "kinds": result.kinds,
        },
        "policy": policy.model_dump(mode="json"),
        "detectors": result.detectors,
        "results": {
            "flagged_records": result.flagged_records,
            "flagged": result.flagged,
            "malformed": {
                "count": result.malformed,
                "reasons": result.malformed_reasons,
                "positions": result.malformed_positions,
            },
            "detectors": result.summaries,
            "seconds": round(result.seconds, 3),
        },
        "canary": canary_result,
        "verdict": verdict(rules, result.scanned),
        "findings": {"file": findings.name, "sha256": dataset_sha256(findings)},
    }
    sealed = seal(certificate, private_key)
    if cert_format == "in-toto":
        write_certificate(out, signed_envelope(certificate, private_key))
    else:
        write_certificate(out, sealed)
    if sarif is not None:
        write_sarif(sarif, sarif_log(certificate, findings, _artifact_uri(data)))
    return sealed


def _artifact_uri(data: Path) -> str:
    """The dataset as SARIF names it: the path as given when relative (code scanning wants
    it relative to the repository root), else a file URI."""
    return data.as_uri() if data.is_absolute() else quote(data.as_posix())
