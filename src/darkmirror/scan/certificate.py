"""The scan certificate: what was scanned, how, what was found, and whether it passed.

A certificate is a JSON object. Its ``content_sha256`` is the SHA-256 of the canonical JSON
(keys sorted, no spaces, UTF-8) of everything else but the signature, so any edit shows;
its optional ``signature`` is an Ed25519 signature of the same bytes, with the public key
beside it. :func:`verify_certificate` checks the three things a third party needs: the
dataset is the one certified (its SHA-256 and size), the certificate was not edited, and
the signature is valid (for the key the verifier trusts, when one is given). It checks the
same certificate written as an in-toto Statement in a DSSE envelope
(:mod:`darkmirror.scan.attestation`) too.

Keys are PEM files (PKCS#8 private, SubjectPublicKeyInfo public) written by
:func:`generate_keypair`; the private key never enters a certificate or a log.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from darkmirror.data.records import dataset_sha256
from darkmirror.errors import DarkmirrorError, require_file
from darkmirror.scan.attestation import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    Envelope,
    is_envelope,
    keyid,
    pae,
    raw_public_key,
)

CERTIFICATE_FORMAT = "darkmirror-certificate/1"
_SEALS = ("content_sha256", "signature")


def canonical_json(value: Any) -> bytes:
    """The bytes that are hashed and signed: sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _body(certificate: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in certificate.items() if k not in _SEALS}


def content_digest(certificate: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the certificate without its seals."""
    return hashlib.sha256(canonical_json(_body(certificate))).hexdigest()


# -- keys ------------------------------------------------------------------------------------


def generate_keypair(private_path: Path, public_path: Path) -> str:
    """Write a new Ed25519 key pair (the private key readable by its owner only).

    Returns:
        The public key, base64 of its 32 raw bytes.

    Raises:
        DarkmirrorError: If either file exists (a key is never overwritten).
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    for p in (private_path, public_path):
        if p.exists():
            raise DarkmirrorError(f"{p} exists; darkmirror never overwrites a key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Created with mode 0600 from the start: never world-readable, even for an instant.
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    public = key.public_key()
    public_path.write_bytes(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return _raw_public(public)


def _raw_public(public: Any) -> str:
    return base64.b64encode(raw_public_key(public)).decode()


def load_private_key(path: Path) -> Any:
    """An Ed25519 private key from a PEM file (no passphrase)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    data = require_file(path).read_bytes()
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        # The exception text may quote the file; say only what is wrong.
        raise DarkmirrorError(f"{path}: not a PEM private key without passphrase") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise DarkmirrorError(f"{path}: expected an Ed25519 private key")
    return key


def load_public_key(path: Path) -> Any:
    """An Ed25519 public key from a PEM file, or from a file holding its base64 raw bytes."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = require_file(path).read_bytes()
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_public_key(data)
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(data.strip(), validate=True))
    except (ValueError, TypeError) as exc:
        raise DarkmirrorError(f"{path}: not an Ed25519 public key (PEM or base64)") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise DarkmirrorError(f"{path}: expected an Ed25519 public key")
    return key


# -- sealing and verifying -------------------------------------------------------------------


def seal(certificate: dict[str, Any], private_key: Any | None = None) -> dict[str, Any]:
    """The certificate with its content digest and, given a key, its signature."""
    body = _body(certificate)
    sealed = {**body, "content_sha256": hashlib.sha256(canonical_json(body)).hexdigest()}
    if private_key is not None:
        signature = private_key.sign(canonical_json(body))
        sealed["signature"] = {
            "algorithm": "ed25519",
            "public_key": _raw_public(private_key.public_key()),
            "value": base64.b64encode(signature).decode(),
        }
    return sealed


def write_certificate(path: Path, certificate: dict[str, Any]) -> None:
    """Write atomically: an interrupted write never leaves a half certificate."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(certificate, indent=2, ensure_ascii=False) + "\n")
    tmp.replace(path)


@dataclass
class Verification:
    """The outcome of :func:`verify_certificate`: one line per check."""

    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(ok for _, ok, _ in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append((name, ok, detail))


def verify_certificate(
    cert_path: Path, data_path: Path, public_key_path: Path | None = None
) -> Verification:
    """Check a certificate against a dataset (and a trusted public key, if given).

    Checks, in order: the certificate parses and has this format; its content digest
    matches (not edited); the dataset's size and SHA-256 match; the signature is valid;
    the signing key is the trusted one. With a trusted key, an unsigned certificate fails.
    A DSSE envelope is checked by :func:`_verify_envelope`.
    """
    result = Verification()
    try:
        cert = json.loads(require_file(cert_path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        result.add("format", False, f"{cert_path} is not JSON: {exc}")
        return result
    if is_envelope(cert):
        return _verify_envelope(cert_path, cert, data_path, public_key_path)
    if not isinstance(cert, dict) or cert.get("format") != CERTIFICATE_FORMAT:
        result.add(
            "format", False, f"not a {CERTIFICATE_FORMAT} certificate nor an in-toto envelope"
        )
        return result
    result.add("format", True, CERTIFICATE_FORMAT)

    digest = content_digest(cert)
    result.add(
        "not edited",
        digest == cert.get("content_sha256"),
        "content digest matches"
        if digest == cert.get("content_sha256")
        else f"content digest {digest[:16]}... differs from the recorded "
        f"{str(cert.get('content_sha256'))[:16]}...: the certificate was edited",
    )

    dataset = cert.get("dataset", {})
    _check_dataset(data_path, dataset.get("bytes"), dataset.get("sha256"), result)

    signature = cert.get("signature")
    trusted = load_public_key(public_key_path) if public_key_path else None
    if signature is None:
        if trusted is not None:
            result.add("signature", False, "the certificate is not signed")
        else:
            result.add("signature", True, "unsigned (no key given to require one)")
        return result
    _check_signature(cert, signature, trusted, result)
    return result


def _check_signature(
    cert: dict[str, Any], signature: Any, trusted: Any, result: Verification
) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        embedded = Ed25519PublicKey.from_public_bytes(base64.b64decode(signature["public_key"]))
        value = base64.b64decode(signature["value"])
    except (KeyError, TypeError, ValueError) as exc:
        result.add("signature", False, f"malformed signature block: {exc}")
        return
    try:
        embedded.verify(value, canonical_json(_body(cert)))
        result.add("signature", True, "valid Ed25519 signature")
    except InvalidSignature:
        result.add(
            "signature", False, "invalid signature: the certificate or the signature was changed"
        )
        return
    if trusted is not None:
        same = _raw_public(trusted) == signature["public_key"]
        result.add(
            "signer",
            same,
            "signed by the trusted key" if same else "signed by a different key than the one given",
        )


def _check_dataset(data_path: Path, size: Any, sha256: Any, result: Verification) -> None:
    """The dataset's size, then (only when it matches: hashing is the slow part) SHA-256."""
    actual = require_file(data_path).stat().st_size
    if actual != size:
        result.add("dataset", False, f"{data_path} has {actual} bytes, certified {size}")
        return
    sha = dataset_sha256(data_path)
    result.add(
        "dataset",
        sha == sha256,
        f"sha256 {sha[:16]}... matches"
        if sha == sha256
        else f"sha256 {sha[:16]}... differs from the certified {str(sha256)[:16]}...",
    )


def _verify_envelope(
    cert_path: Path, document: dict[str, Any], data_path: Path, public_key_path: Path | None
) -> Verification:
    """Check an in-toto Statement in a DSSE envelope (see :mod:`darkmirror.scan.attestation`).

    Checks, in order: the envelope parses; its payload type is in-toto's; the payload is an
    in-toto Statement v1 with darkmirror's predicate type; the subject is the dataset (its
    name, and its size and SHA-256); a signature over the PAE verifies, with the trusted
    key when one is given, else with the key the predicate names. An envelope without
    signatures fails: darkmirror never writes one.
    """
    result = Verification()
    try:
        envelope = Envelope.from_json(document)
    except ValueError as exc:
        result.add("format", False, f"{cert_path}: malformed DSSE envelope: {exc}")
        return result
    result.add("format", True, "DSSE envelope")
    if envelope.payload_type != PAYLOAD_TYPE:
        result.add("payload type", False, f"{envelope.payload_type!r}, expected {PAYLOAD_TYPE}")
        return result
    result.add("payload type", True, PAYLOAD_TYPE)

    try:
        stmt = json.loads(envelope.payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        stmt = None
    if not isinstance(stmt, dict) or stmt.get("_type") != STATEMENT_TYPE:
        result.add("statement", False, f"the payload is not an {STATEMENT_TYPE} JSON object")
        return result
    result.add("statement", True, STATEMENT_TYPE)
    predicate = stmt.get("predicate")
    if stmt.get("predicateType") != PREDICATE_TYPE or not isinstance(predicate, dict):
        result.add(
            "predicate type", False, f"{stmt.get('predicateType')!r}, expected {PREDICATE_TYPE}"
        )
        return result
    result.add("predicate type", True, PREDICATE_TYPE)

    subjects = stmt.get("subject")
    subject = subjects[0] if isinstance(subjects, list) and len(subjects) == 1 else None
    if not isinstance(subject, dict) or not isinstance(subject.get("digest"), dict):
        result.add("subject", False, "expected one subject with a name and a sha256 digest")
        return result
    name = subject.get("name")
    result.add(
        "subject",
        name == Path(data_path).name,
        f"names {name!r}"
        if name == Path(data_path).name
        else f"the statement is about {name!r}, not {Path(data_path).name!r}",
    )
    dataset = predicate.get("dataset", {})
    sha = subject["digest"].get("sha256")
    if dataset.get("sha256") != sha:
        # Only a signer could write this; the predicate and the subject must agree.
        result.add("dataset", False, "the subject's sha256 differs from the predicate's")
    else:
        _check_dataset(data_path, dataset.get("bytes"), sha, result)

    _check_envelope_signature(envelope, predicate.get("signer"), public_key_path, result)
    return result


def _check_envelope_signature(
    envelope: Envelope, signer: Any, public_key_path: Path | None, result: Verification
) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not envelope.signatures:
        result.add("signature", False, "the envelope has no signatures")
        return
    if public_key_path is not None:
        key = load_public_key(public_key_path)
        whose = "the trusted key"
    else:
        try:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(signer["public_key"]))
        except (KeyError, TypeError, ValueError):
            result.add("signature", False, "no --public-key given and no signer in the predicate")
            return
        whose = "the key the predicate names (no --public-key given to require a signer)"
    signed = pae(envelope.payload_type, envelope.payload)
    # DSSE keyids are hints, never trusted: every signature is tried with the key.
    for _, sig in envelope.signatures:
        try:
            key.verify(sig, signed)
        except InvalidSignature:
            continue
        result.add(
            "signature", True, f"valid Ed25519 signature by {whose}, keyid {keyid(key)[:16]}..."
        )
        return
    if public_key_path is not None and any(k != keyid(key) for k, _ in envelope.signatures):
        detail = "no signature by the trusted key: signed by a different key than the one given"
    else:
        detail = "invalid signature: the statement or the signature was changed"
    result.add("signature", False, detail)
