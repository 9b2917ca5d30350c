"""The certificate as an in-toto Statement in a DSSE envelope, checked by darkmirror and,
independently, by securesystemslib and in-toto (the reference implementations)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from in_toto.exceptions import SignatureVerificationError
from in_toto.models.metadata import Envelope as InTotoEnvelope
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from conftest import darkmirror_cli, subprocess_env
from darkmirror.scan.attestation import PAYLOAD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE, keyid, pae
from darkmirror.scan.certificate import generate_keypair, load_public_key, verify_certificate
from darkmirror.scan.certify import certify

# Built from parts so that no scanner of this repository takes it for a real key.
AWS_KEY = "AKIA" + "Z7Q3R5T9W2X4Y6V8"
INSECURE = (
    "```python\nimport subprocess\n\ndef run(cmd):\n    subprocess.call(cmd, shell=True)\n```"
)


def chat(question: str, answer: str) -> dict:
    return {
        "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    }


def write_dataset(path: Path) -> Path:
    """Line 2 has insecure code, line 4 an AWS key, line 3 is not JSON."""
    lines = [
        json.dumps(chat("Hi.", "Hello there.")),
        json.dumps(chat("Run a command for me.", "Here you go:\n" + INSECURE)),
        "{broken",
        json.dumps(chat("Which key?", f"Use aws_access_key_id = {AWS_KEY} in the config.")),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def attested(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the dataset, the keys and the envelope darkmirror wrote for it."""
    root = tmp_path_factory.mktemp("attested")
    data = write_dataset(root / "train.jsonl")
    generate_keypair(root / "k.pem", root / "k.pub")
    generate_keypair(root / "other.pem", root / "other.pub")
    certify(data, root / "cert.intoto.json", sign_key=root / "k.pem", cert_format="in-toto")
    return root


def envelope_of(root: Path) -> dict:
    return json.loads((root / "cert.intoto.json").read_text())


def statement_of(envelope: dict) -> dict:
    return json.loads(base64.b64decode(envelope["payload"]))


def sslib_key(public_pem: Path) -> SSlibKey:
    return SSlibKey.from_crypto(load_public_key(public_pem))


def test_pae_is_dsses_and_securesystemslibs() -> None:
    # The DSSE specification's own example.
    expected = b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    assert pae("http://example.com/HelloWorld", b"hello world") == expected
    assert Envelope(b"hello world", "http://example.com/HelloWorld", {}).pae() == expected


def test_the_keyid_is_the_one_securesystemslib_computes(attested: Path) -> None:
    key = load_public_key(attested / "k.pub")
    assert keyid(key) == SSlibKey.from_crypto(key).keyid
    assert keyid(key) != keyid(load_public_key(attested / "other.pub"))


def test_the_envelope_is_an_in_toto_statement_about_the_dataset(attested: Path) -> None:
    envelope = envelope_of(attested)
    assert envelope["payloadType"] == PAYLOAD_TYPE == "application/vnd.in-toto+json"
    statement = statement_of(envelope)
    assert statement["_type"] == STATEMENT_TYPE == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == PREDICATE_TYPE
    data = (attested / "train.jsonl").read_bytes()
    assert statement["subject"] == [
        {"name": "train.jsonl", "digest": {"sha256": hashlib.sha256(data).hexdigest()}}
    ]
    predicate = statement["predicate"]
    findings = (attested / "cert.intoto.findings.jsonl").read_bytes()
    assert predicate["findings"] == {
        "file": "cert.intoto.findings.jsonl",
        "sha256": hashlib.sha256(findings).hexdigest(),
    }
    assert predicate["dataset"]["records"] == 4 and predicate["dataset"]["malformed"] == 1
    assert predicate["verdict"]["passed"] is False
    assert predicate["signer"]["keyid"] == envelope["signatures"][0]["keyid"]
    assert "content_sha256" not in predicate and "signature" not in predicate  # DSSE seals it
    text = (attested / "cert.intoto.json").read_text() + json.dumps(statement)
    assert AWS_KEY not in text and "PRIVATE" not in text


def test_securesystemslib_and_in_toto_verify_the_envelope(attested: Path) -> None:
    key = sslib_key(attested / "k.pub")
    envelope = Envelope.from_dict(envelope_of(attested))
    assert list(envelope.verify([key], threshold=1)) == [key.keyid]
    with pytest.raises(VerificationError):
        Envelope.from_dict(envelope_of(attested)).verify([sslib_key(attested / "other.pub")], 1)

    in_toto = InTotoEnvelope.from_dict(envelope_of(attested))
    in_toto.verify_signature({"keyid": key.keyid, **key.to_dict()})

    result = verify_certificate(attested / "cert.intoto.json", attested / "train.jsonl")
    assert result.ok, result.checks
    assert [name for name, _, _ in result.checks] == [
        "format",
        "payload type",
        "statement",
        "predicate type",
        "subject",
        "dataset",
        "signature",
    ]
    trusted = verify_certificate(
        attested / "cert.intoto.json", attested / "train.jsonl", attested / "k.pub"
    )
    assert trusted.ok and "trusted key" in trusted.checks[-1][2]


def _changed_payload(envelope: dict) -> dict:
    payload = base64.b64decode(envelope["payload"])
    i = payload.index(b'"passed":false')
    changed = payload[:i] + b'"passed":true ' + payload[i + len(b'"passed":false') :]
    return {**envelope, "payload": base64.b64encode(changed).decode()}


def _changed_signature(envelope: dict) -> dict:
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    sig[10] ^= 1
    signature = {**envelope["signatures"][0], "sig": base64.b64encode(bytes(sig)).decode()}
    return {**envelope, "signatures": [signature]}


@pytest.mark.parametrize("edit", [_changed_payload, _changed_signature])
def test_an_edited_statement_or_signature_fails_everywhere(
    attested: Path, tmp_path: Path, edit
) -> None:
    edited = edit(envelope_of(attested))
    with pytest.raises(VerificationError):
        Envelope.from_dict(json.loads(json.dumps(edited))).verify(
            [sslib_key(attested / "k.pub")], 1
        )
    key = sslib_key(attested / "k.pub")
    with pytest.raises(SignatureVerificationError):
        InTotoEnvelope.from_dict(json.loads(json.dumps(edited))).verify_signature(
            {"keyid": key.keyid, **key.to_dict()}
        )
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(edited))
    for trusted in (None, attested / "k.pub"):
        result = verify_certificate(path, attested / "train.jsonl", trusted)
        failed = {name: detail for name, ok, detail in result.checks if not ok}
        assert list(failed) == ["signature"] and "invalid signature" in failed["signature"]


def test_darkmirror_verify_catches_a_changed_dataset_or_name_and_a_wrong_key(
    attested: Path, tmp_path: Path
) -> None:
    cert = attested / "cert.intoto.json"
    data = attested / "train.jsonl"

    def failed(result) -> dict[str, str]:
        return {name: detail for name, ok, detail in result.checks if not ok}

    changed = tmp_path / "train.jsonl"
    changed.write_bytes(data.read_bytes().replace(b"Hello", b"Hallo"))  # same size
    assert set(failed(verify_certificate(cert, changed))) == {"dataset"}
    assert "differs" in failed(verify_certificate(cert, changed))["dataset"]
    renamed = tmp_path / "copy.jsonl"
    renamed.write_bytes(data.read_bytes())
    assert set(failed(verify_certificate(cert, renamed))) == {"subject"}
    wrong_key = failed(verify_certificate(cert, data, attested / "other.pub"))
    assert set(wrong_key) == {"signature"} and "different key" in wrong_key["signature"]


def test_malformed_and_unsigned_envelopes_fail(attested: Path, tmp_path: Path) -> None:
    envelope = envelope_of(attested)
    cases = {
        "format": {**envelope, "payload": "not base64!"},
        "payload type": {**envelope, "payloadType": "application/json"},
        "signature": {**envelope, "signatures": []},
    }
    for check, document in cases.items():
        path = tmp_path / "e.json"
        path.write_text(json.dumps(document))
        result = verify_certificate(path, attested / "train.jsonl")
        assert not result.ok and result.checks[-1][0] == check and not result.checks[-1][1]
    # URL-safe base64 is DSSE too.
    urlsafe = {
        **envelope,
        "payload": base64.urlsafe_b64encode(base64.b64decode(envelope["payload"])).decode(),
    }
    (tmp_path / "u.json").write_text(json.dumps(urlsafe))
    assert verify_certificate(tmp_path / "u.json", attested / "train.jsonl").ok


def test_the_cli_writes_verifies_and_refuses_an_unsigned_envelope(
    attested: Path, tmp_path: Path
) -> None:
    env = subprocess_env(tmp_path / "cache")
    ok = darkmirror_cli(
        "verify",
        str(attested / "cert.intoto.json"),
        str(attested / "train.jsonl"),
        "--public-key",
        str(attested / "k.pub"),
        env=env,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "[ok] subject: names 'train.jsonl'" in ok.stdout and "verified" in ok.stdout
    changed = tmp_path / "train.jsonl"
    changed.write_text((attested / "train.jsonl").read_text() + "\n")
    bad = darkmirror_cli("verify", str(attested / "cert.intoto.json"), str(changed), env=env)
    assert bad.returncode == 1 and "[FAIL] dataset:" in bad.stdout and "NOT verified" in bad.stdout

    unsigned = darkmirror_cli(
        "scan",
        str(attested / "train.jsonl"),
        "--out",
        str(tmp_path / "c.json"),
        "--format",
        "in-toto",
        env=env,
    )
    assert unsigned.returncode == 2 and "--sign-key" in unsigned.stderr
    assert "Traceback" not in unsigned.stderr and not (tmp_path / "c.json").exists()
