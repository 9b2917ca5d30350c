"""The scan's code and secrets findings as SARIF 2.1.0, for code-scanning tools.

``darkmirror scan --sarif FILE`` reads the findings file the scan wrote and keeps the
findings of the ``code`` and ``secrets`` detectors: those name a rule that fired at a
place in a record, which is what a SARIF result is. Toxicity scores, banned numbers,
duplicates and malformed records describe records or the dataset as a whole and stay in
the certificate and the findings file.

Each result points at the dataset file: ``region.startLine`` is the record's line in a
JSONL or CSV file; a Parquet row has no line, so it is a logical location (``row 17``) and
the ``row`` property. The finding's ``where`` (``messages[1] code line 14``) is in the
message and a logical location. Messages are the findings' own, which show secrets
redacted only.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from darkmirror.errors import InputError, require_file
from darkmirror.scan.certificate import write_certificate

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_DETECTORS = ("code", "secrets")
LEVELS = {"low": "note", "medium": "warning", "high": "error"}
"""SARIF level of each finding severity."""
FINGERPRINT = "darkmirrorFinding/v1"
_FINDING_KEYS = {"detector", "rule", "message"}


def read_findings(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(record position, finding)`` for every finding in a scan's findings file.

    Raises:
        InputError: For a line that is not a findings row, with its file and line.
    """
    with require_file(path).open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if not _is_findings_row(row):
                raise InputError(
                    "expected a findings row: {position, findings: [{detector, rule, "
                    "severity, message, where}]}",
                    path=path,
                    line=line_no,
                )
            for finding in row["findings"]:
                yield row["position"], finding


def _is_findings_row(row: Any) -> bool:
    return (
        isinstance(row, dict)
        and isinstance(row.get("position"), int)
        and isinstance(row.get("findings"), list)
        and all(isinstance(f, dict) and f.keys() >= _FINDING_KEYS for f in row["findings"])
    )


def _rule_description(detector: str, message: str) -> str:
    # Messages are "<what>: <redacted value>" (secrets) or "bandit <test> (CWE-n),
    # confidence <c>." (code): the part that names the rule, not the instance.
    if detector == "secrets":
        return message.split(": ", 1)[0]
    return message.split(", confidence ", 1)[0].rstrip(".")


def sarif_log(
    certificate: dict[str, Any], findings_path: Path, artifact_uri: str | None = None
) -> dict[str, Any]:
    """The SARIF log of a scan's code and secrets findings.

    Args:
        certificate: The scan's certificate (darkmirror format, sealed or not): the
            dataset, darkmirror's version and the detectors' versions come from it.
        findings_path: The findings file the scan wrote.
        artifact_uri: The dataset's URI in the results (a path relative to the
            repository root is what code-scanning services expect); default its name.
    """
    dataset = certificate["dataset"]
    uri = artifact_uri or dataset["name"]
    parquet = dataset["name"].lower().endswith(".parquet")
    rules: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    seen = Counter[str]()
    for position, finding in read_findings(findings_path):
        detector = finding["detector"]
        if detector not in SARIF_DETECTORS:
            continue
        rule_id = f"{detector}/{finding['rule']}"
        severity = finding.get("severity", "medium")
        rule = rules.setdefault(
            rule_id,
            {
                "id": rule_id,
                "shortDescription": {"text": _rule_description(detector, finding["message"])},
                "defaultConfiguration": {"level": LEVELS.get(severity, "warning")},
                "properties": {"detector": detector, "severity": severity},
            },
        )
        # A rule's default level is that of its most severe finding.
        if _rank(severity) > _rank(rule["properties"]["severity"]):
            rule["properties"]["severity"] = severity
            rule["defaultConfiguration"]["level"] = LEVELS[severity]
        where = finding.get("where")
        results.append(
            {
                "ruleId": rule_id,
                "level": LEVELS.get(severity, "warning"),
                "message": {"text": finding["message"] + (f" ({where})" if where else "")},
                "locations": [_location(uri, position, where, parquet)],
                "partialFingerprints": {
                    FINGERPRINT: _fingerprint(rule_id, position, where, finding["message"], seen)
                },
                "properties": {
                    "detector": detector,
                    "severity": severity,
                    ("row" if parquet else "line"): position,
                },
            }
        )
    rule_list = sorted(rules.values(), key=lambda r: r["id"])
    index = {r["id"]: i for i, r in enumerate(rule_list)}
    for result in results:
        result["ruleIndex"] = index[result["ruleId"]]
    return {
        "$schema": SARIF_SCHEMA_URI,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "darkmirror",
                        "version": certificate["darkmirror_version"],
                        "rules": rule_list,
                    },
                    "extensions": [
                        {"name": d["name"], "version": str(d["version"])}
                        for d in certificate.get("detectors", [])
                        if d.get("name") in SARIF_DETECTORS
                    ],
                },
                "artifacts": [
                    {
                        "location": {"uri": uri},
                        "length": dataset["bytes"],
                        "hashes": {"sha-256": dataset["sha256"]},
                    }
                ],
                "results": results,
                "properties": {
                    "certificateFindings": certificate.get("findings", {}),
                    "detectors": list(SARIF_DETECTORS),
                },
            }
        ],
    }


def write_sarif(path: Path, log: dict[str, Any]) -> None:
    """Write a SARIF log atomically, as the certificate is written."""
    write_certificate(path, log)


def _rank(severity: str) -> int:
    return list(LEVELS).index(severity) if severity in LEVELS else 1


def _location(uri: str, position: int, where: str | None, parquet: bool) -> dict[str, Any]:
    physical: dict[str, Any] = {"artifactLocation": {"uri": uri, "index": 0}}
    logical: list[dict[str, Any]] = []
    if parquet:
        logical.append({"name": f"row {position}", "kind": "element"})
    else:
        physical["region"] = {"startLine": position}
    if where:
        record = f"row {position}" if parquet else f"line {position}"
        logical.append({"name": where, "fullyQualifiedName": f"{record}/{where}", "kind": "member"})
    location: dict[str, Any] = {"physicalLocation": physical}
    if logical:
        location["logicalLocations"] = logical
    return location


def _fingerprint(
    rule_id: str, position: int, where: str | None, message: str, seen: Counter[str]
) -> str:
    # Stable across rescans of the same data; a repeat of the same finding in one record
    # (two values that redact alike) gets its own by its occurrence number.
    key = hashlib.sha256(f"{rule_id}\n{position}\n{where}\n{message}".encode()).hexdigest()
    seen[key] += 1
    return f"{key[:32]}:{seen[key]}"
