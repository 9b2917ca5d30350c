"""`darkmirror scan`: scan a dataset, run the canary if asked, write the certificate."""

from __future__ import annotations

import datetime as dt
from importlib import metadata
from pathlib import Path
from typing import Any

from darkmirror.data.records import dataset_sha256
from darkmirror.errors import require_file
from darkmirror.scan.canary import CanarySettings, canary_rules, run_canary
from darkmirror.scan.certificate import (
    CERTIFICATE_FORMAT,
    load_private_key,
    seal,
    write_certificate,
)
from darkmirror.scan.policy import Policy, evaluate_rules, load_policy
from darkmirror.scan.scanner import scan_file


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
    batch_size: int = 512,
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
        batch_size: Records per detector call.
        progress: Show progress.

    Returns:
        The sealed certificate.
    """
    # Lazy: the detectors bring bandit, semgrep and scikit-learn; a bad path or policy is
    # reported before they load.
    from darkmirror.scan.detectors import build_detectors

    data = require_file(data)
    policy: Policy = load_policy(policy_path)
    private_key = load_private_key(sign_key) if sign_key else None  # fail before the scan
    detectors = build_detectors(policy.detectors)
    findings = findings_path_for(out)
    result = scan_file(
        data,
        detectors,
        findings,
        batch_size=batch_size,
        sample_size=canary.sample_size if canary else 0,
        sample_seed=canary.seed if canary else 0,
        progress=progress,
    )
    rules = evaluate_rules(
        policy, result.scanned, result.flagged, result.malformed, {d.name for d in detectors}
    )
    canary_result: dict[str, Any] = {"ran": False, "reason": "not requested (--canary)"}
    if canary is not None:
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
        "verdict": {"passed": all(r["passed"] for r in rules), "rules": rules},
        "findings": {"file": findings.name, "sha256": dataset_sha256(findings)},
    }
    sealed = seal(certificate, private_key)
    write_certificate(out, sealed)
    return sealed
