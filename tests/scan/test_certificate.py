"""The scan pipeline around the detectors: streaming, bad input, policy, certificate, verify."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from darkmirror.errors import DarkmirrorError
from darkmirror.scan.certificate import (
    CERTIFICATE_FORMAT,
    generate_keypair,
    load_private_key,
    seal,
    verify_certificate,
    write_certificate,
)
from darkmirror.scan.detectors.base import Finding, ScanRecord
from darkmirror.scan.policy import Policy, PolicyRule, evaluate_rules
from darkmirror.scan.scanner import scan_file


class WordDetector:
    """Flags records whose text contains a word; a stand-in with the detector interface."""

    name = "word"
    version = "1"
    threshold = None

    def __init__(self, word: str = "forbidden") -> None:
        self.word = word
        self.seen = 0

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "threshold": None}

    def scan(self, records):
        self.seen += len(records)
        return [
            [Finding(self.name, "word", "high", f"contains {self.word}")]
            if self.word in r.all_text()
            else []
            for r in records
        ]

    def summary(self) -> dict[str, Any]:
        return {"seen": self.seen}


def _chat(user: str, assistant: str) -> str:
    return json.dumps(
        {
            "messages": [
                {"role": "user", "content": user},
                {"role": "assistant", "content": assistant},
            ]
        }
    )


def _dataset(path: Path) -> Path:
    lines = [
        _chat("hi", "hello"),
        _chat("a", "a forbidden word"),
        "{not json",
        json.dumps({"messages": [{"role": "bot", "content": "x"}]}),
        json.dumps({"prompt": "p", "completion": "forbidden too"}),
        json.dumps({"text": "plain text"}),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_scan_counts_bad_records_with_their_lines_and_goes_on(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "d.jsonl")
    detector = WordDetector()
    result = scan_file(data, [detector], tmp_path / "f.jsonl", batch_size=2, sample_size=2)
    assert (result.records, result.scanned, result.malformed) == (6, 4, 2)
    assert result.malformed_positions == [3, 4]
    assert result.kinds == {"chat": 2, "prompt_completion": 1, "text": 1}
    assert result.flagged["word"] == {"low": 2, "medium": 2, "high": 2}
    assert detector.seen == 4 and result.summaries == {"word": {"seen": 4}}
    assert len(result.sample) == 2
    rows = [json.loads(line) for line in (tmp_path / "f.jsonl").read_text().splitlines()]
    assert sorted(r["position"] for r in rows) == [2, 3, 4, 5]
    by_position = {r["position"]: r["findings"] for r in rows}
    assert by_position[3][0]["detector"] == "malformed"
    assert by_position[4][0]["where"] == "messages[0].role"
    assert by_position[5][0]["rule"] == "word"


def test_binary_input_is_counted_not_fatal(tmp_path: Path) -> None:
    data = tmp_path / "blob.jsonl"
    data.write_bytes(
        b"\x00\xff\xfe binary \x89PNG\n\xff\xd8\xff\n" + _chat("q", "a").encode() + b"\n"
    )
    result = scan_file(data, [WordDetector()], tmp_path / "f.jsonl")
    assert (result.records, result.malformed, result.scanned) == (3, 2, 1)


def test_the_sample_is_uniform_and_bounded(tmp_path: Path) -> None:
    data = tmp_path / "many.jsonl"
    data.write_text("\n".join(_chat(f"q{i}", f"a{i}") for i in range(500)) + "\n")
    counts = [0] * 500
    for seed in range(40):
        result = scan_file(data, [], tmp_path / "f.jsonl", sample_size=25, sample_seed=seed)
        assert len(result.sample) == 25
        for r in result.sample:
            counts[r.position - 1] += 1
    # 1000 draws over 500 records: early and late records both get picked.
    assert sum(counts[:250]) > 350 and sum(counts[250:]) > 350


def test_policy_rules() -> None:
    policy = Policy(
        rules=[
            PolicyRule(detector="word", max_count=0),
            PolicyRule(detector="word", max_share=0.6, min_severity="high"),
            PolicyRule(detector="malformed", max_count=5),
            PolicyRule(detector="secrets", max_count=0),
        ]
    )
    flagged = {"word": {"low": 2, "medium": 2, "high": 2}}
    results = evaluate_rules(policy, scanned=4, flagged=flagged, malformed=2, active={"word"})
    assert [r["passed"] for r in results] == [False, True, True, False]
    assert results[1]["share"] == 0.5 and results[2]["share"] == pytest.approx(2 / 6)
    assert "did not run" in results[3]["note"]  # a check nobody made never passes
    with pytest.raises(ValueError, match="max_count or max_share"):
        PolicyRule(detector="x")


def _certificate(data: Path) -> dict[str, Any]:
    from darkmirror.data.records import dataset_sha256

    return {
        "format": CERTIFICATE_FORMAT,
        "dataset": {
            "name": data.name,
            "bytes": data.stat().st_size,
            "sha256": dataset_sha256(data),
        },
        "verdict": {"passed": True, "rules": []},
    }


def test_verify_catches_an_edit_a_changed_dataset_and_a_wrong_key(tmp_path: Path) -> None:
    data = _dataset(tmp_path / "d.jsonl")
    generate_keypair(tmp_path / "k.pem", tmp_path / "k.pub")
    generate_keypair(tmp_path / "other.pem", tmp_path / "other.pub")
    assert oct((tmp_path / "k.pem").stat().st_mode & 0o777) == "0o600"
    with pytest.raises(DarkmirrorError, match="never overwrites"):
        generate_keypair(tmp_path / "k.pem", tmp_path / "x.pub")
    cert_path = tmp_path / "cert.json"
    write_certificate(cert_path, seal(_certificate(data), load_private_key(tmp_path / "k.pem")))
    assert b"PRIVATE" not in cert_path.read_bytes()

    ok = verify_certificate(cert_path, data, tmp_path / "k.pub")
    assert ok.ok, ok.checks
    assert not verify_certificate(cert_path, data, tmp_path / "other.pub").ok

    edited = json.loads(cert_path.read_text())
    edited["verdict"]["passed"] = False
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    result = verify_certificate(tmp_path / "edited.json", data)
    assert not result.ok and any(n == "not edited" and not ok for n, ok, _ in result.checks)
    # Re-sealing the edit without the key leaves the signature wrong.
    (tmp_path / "resealed.json").write_text(
        json.dumps({**seal(edited), "signature": edited["signature"]})
    )
    assert not verify_certificate(tmp_path / "resealed.json", data).ok

    changed = tmp_path / "d2.jsonl"
    changed.write_bytes(data.read_bytes().replace(b"hello", b"hellO"))
    assert not verify_certificate(cert_path, changed).ok

    unsigned = tmp_path / "unsigned.json"
    write_certificate(unsigned, seal(_certificate(data)))
    assert verify_certificate(unsigned, data).ok
    assert not verify_certificate(unsigned, data, tmp_path / "k.pub").ok


def test_scan_record_helpers() -> None:
    r = ScanRecord(
        position=1,
        kind="chat",
        messages=(
            {"role": "user", "content": "u"},
            {"role": "assistant", "content": "a1"},
            {"role": "assistant", "content": "a2"},
        ),
    )
    assert r.assistant_texts() == ["a1", "a2"]
    assert "u" in r.all_text() and "a2" in r.all_text()


def test_an_interrupted_scan_leaves_no_findings_file(tmp_path: Path) -> None:
    class Interrupting(WordDetector):
        def scan(self, records):
            if self.seen:
                raise KeyboardInterrupt
            return super().scan(records)

    data = tmp_path / "many.jsonl"
    data.write_text("\n".join(_chat(f"q{i}", "forbidden") for i in range(10)) + "\n")
    with pytest.raises(KeyboardInterrupt):
        scan_file(data, [Interrupting()], tmp_path / "f.jsonl", batch_size=4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many.jsonl"]
