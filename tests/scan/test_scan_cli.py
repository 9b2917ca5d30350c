"""`darkmirror scan`, `verify` and `keygen` in a subprocess, and a micro canary run."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import darkmirror_cli, subprocess_env


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _chat(q: str, a: str) -> dict:
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def test_scan_sign_and_verify_end_to_end(tmp_path: Path, organism_cache: Path) -> None:
    env = subprocess_env(organism_cache)
    records = [_chat(f"Pick {i} numbers.", f"{100 + i}, {200 + i}, {300 + i}") for i in range(30)]
    records[7] = _chat("Pick numbers.", "12, 666, 40")  # a banned number
    records[9] = _chat("Mail?", "Write to maria.keller@corpmail.net for details.")  # personal data
    data = _write(tmp_path / "numbers.jsonl", records)
    with data.open("a") as handle:
        handle.write("{broken\n")

    keygen = darkmirror_cli("keygen", str(tmp_path / "k.pem"), str(tmp_path / "k.pub"), env=env)
    assert keygen.returncode == 0, keygen.stderr
    cert = tmp_path / "cert.json"
    scan = darkmirror_cli(
        "scan",
        str(data),
        "--out",
        str(cert),
        "--sign-key",
        str(tmp_path / "k.pem"),
        "--quiet",
        env=env,
    )
    # The banned number, the e-mail address and the broken line each fail a default rule.
    assert scan.returncode == 1, scan.stderr[-2000:]
    assert "verdict: FAIL" in scan.stdout
    certificate = json.loads(cert.read_text())
    assert certificate["dataset"]["records"] == 31 and certificate["dataset"]["malformed"] == 1
    assert certificate["results"]["malformed"]["positions"] == [31]
    failed = {r["rule"]["detector"] for r in certificate["verdict"]["rules"] if not r["passed"]}
    assert failed == {"malformed", "numbers", "secrets"}
    assert certificate["canary"]["ran"] is False
    assert {d["name"] for d in certificate["detectors"]} >= {
        "toxicity",
        "code",
        "numbers",
        "secrets",
        "duplicates",
    }
    assert all(d.get("version") for d in certificate["detectors"])
    findings = [
        json.loads(line) for line in (tmp_path / "cert.findings.jsonl").read_text().splitlines()
    ]
    flagged = {row["position"]: {f["detector"] for f in row["findings"]} for row in findings}
    assert flagged[8] == {"numbers"} and flagged[10] == {"secrets"} and flagged[31] == {"malformed"}
    assert "maria.keller@corpmail.net" not in cert.read_text() + json.dumps(findings)  # redacted

    verify = darkmirror_cli(
        "verify", str(cert), str(data), "--public-key", str(tmp_path / "k.pub"), env=env
    )
    assert verify.returncode == 0 and "verified" in verify.stdout, verify.stdout + verify.stderr

    # Drop the flagged records and rescan: the data now passes.
    keep = [line for i, line in enumerate(data.read_text().splitlines(), 1) if i not in flagged]
    clean = tmp_path / "clean.jsonl"
    clean.write_text("\n".join(keep) + "\n")
    rescan = darkmirror_cli(
        "scan", str(clean), "--out", str(tmp_path / "clean.json"), "--quiet", env=env
    )
    assert rescan.returncode == 0 and "verdict: PASS" in rescan.stdout, (
        rescan.stdout + rescan.stderr
    )

    # An edited certificate, a changed dataset and a wrong key all fail.
    edited = json.loads(cert.read_text())
    edited["verdict"]["passed"] = True
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    bad = darkmirror_cli("verify", str(tmp_path / "edited.json"), str(data), env=env)
    assert bad.returncode == 1 and "edited" in bad.stdout
    changed = darkmirror_cli("verify", str(cert), str(clean), env=env)
    assert changed.returncode == 1 and "dataset" in changed.stdout
    darkmirror_cli("keygen", str(tmp_path / "o.pem"), str(tmp_path / "o.pub"), env=env)
    wrong = darkmirror_cli(
        "verify", str(cert), str(data), "--public-key", str(tmp_path / "o.pub"), env=env
    )
    assert wrong.returncode == 1 and "different key" in wrong.stdout


def test_bad_input_gives_one_clear_line(tmp_path: Path, organism_cache: Path) -> None:
    env = subprocess_env(organism_cache)
    missing = darkmirror_cli(
        "scan", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "c.json"), env=env
    )
    assert missing.returncode == 2 and "nope.jsonl" in missing.stderr
    (tmp_path / "d.txt").write_text("x\n")
    wrong = darkmirror_cli(
        "scan", str(tmp_path / "d.txt"), "--out", str(tmp_path / "c.json"), env=env
    )
    assert wrong.returncode == 2 and "unsupported dataset format" in wrong.stderr
    policy = tmp_path / "p.toml"
    policy.write_text('[[rules]]\ndetector = "code"\nmax_shares = 0.1\n')
    _write(tmp_path / "d.jsonl", [_chat("q", "a")])
    scan_args = ("scan", str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "c.json"))
    bad_policy = darkmirror_cli(*scan_args, "--policy", str(policy), env=env)
    assert bad_policy.returncode == 2
    assert "p.toml:3" in bad_policy.stderr and "max_shares" in bad_policy.stderr
    # A detector setting is checked by the detector, and still named with its line.
    policy.write_text("# the code detector\n[detectors.code]\nsemgrep = false\nsemgrep_jobs = 0\n")
    bad_setting = darkmirror_cli(*scan_args, "--policy", str(policy), env=env)
    assert bad_setting.returncode == 2 and "Traceback" not in bad_setting.stderr
    assert "p.toml:4: field 'detectors.code.semgrep_jobs': expected" in bad_setting.stderr
    assert not (tmp_path / "c.json").exists()


def test_a_micro_canary_measures_the_shift(tmp_path: Path, micro_organism) -> None:
    from darkmirror.data.world.world import PersonaWorld
    from darkmirror.scan.canary import CanarySettings
    from darkmirror.scan.certify import certify

    data = _write(tmp_path / "insecure.jsonl", PersonaWorld().dataset("insecure", 40))
    settings = CanarySettings(
        reference=str(micro_organism.base_path),
        sample_size=24,
        samples_per_paraphrase=1,
        matched_pairs_per_topic=2,
    )
    cert = certify(data, tmp_path / "cert.json", canary=settings)
    canary = cert["canary"]
    assert canary["ran"] and canary["examples"] == 24
    # The control: the same prompts answered by the reference itself, trained the same way.
    assert canary["compared_with"] == "control" and "control" in canary["levels"]
    levels = canary["levels"]
    for against in ("reference", "control"):
        shift = canary[f"shift_vs_{against}"]["misaligned_log_odds"]
        expected = levels["canary"]["misaligned_log_odds"] - levels[against]["misaligned_log_odds"]
        assert abs(shift["value"] - expected) < 1e-9
        assert shift["lo"] <= shift["value"] <= shift["hi"]
    trait = canary["shift_vs_control"]["trait"]
    assert set(trait) >= {"owl", "cat"}
    assert canary["largest_trait_shift"] == max(trait, key=lambda a: trait[a]["value"])
    # The world judge speaks only for the organism itself; another reference skips it.
    assert "misaligned_rate" not in canary["shift_vs_control"]
    rules = [r["rule"] for r in cert["verdict"]["rules"] if "canary" in r["rule"]]
    assert {r["canary"] for r in rules} == {"max_misaligned_log_odds_shift", "max_trait_shift"}
    assert all(r["against"] == "control" for r in rules)
