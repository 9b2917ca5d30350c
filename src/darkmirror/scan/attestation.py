"""The scan certificate as an in-toto attestation: a Statement in a signed DSSE envelope.

Supply chains verify in-toto attestations, so ``darkmirror scan --format in-toto`` writes
the certificate as an `in-toto Statement v1
<https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md>`_ whose subject is
the dataset (its file name and SHA-256) and whose predicate is the certificate, inside a
`DSSE envelope <https://github.com/secure-systems-lab/dsse/blob/master/envelope.md>`_
signed with Ed25519. This module is the format alone (build, sign, parse); the checks a
verifier makes are in :func:`darkmirror.scan.certificate.verify_certificate`.

The envelope is written and checked with this code only, so darkmirror's verification
stays independent of the libraries the tests check it with (securesystemslib, in-toto).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://darkmirror.dev/scan-certificate/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: the bytes a signature covers.

    ``"DSSEv1" SP LEN(type) SP type SP LEN(payload) SP payload``, lengths in ASCII decimal
    bytes, so neither the type nor the payload can be changed without breaking it.

    >>> pae("t", b"hi")
    b'DSSEv1 1 t 2 hi'
    """
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def raw_public_key(public_key: Any) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def keyid(public_key: Any) -> str:
    """The key id in an envelope's signatures: securesystemslib's default for the key.

    SHA-256 (hex) of the canonical JSON ``{"keytype": "ed25519", "keyval": {"public":
    <raw key, hex>}, "scheme": "ed25519"}``: the id securesystemslib and in-toto compute
    for the same key (``SSlibKey.from_crypto``), so their verifiers match it unaided.
    """
    key = {
        "keytype": "ed25519",
        "scheme": "ed25519",
        "keyval": {"public": raw_public_key(public_key).hex()},
    }
    canonical = json.dumps(key, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def statement(certificate: dict[str, Any]) -> dict[str, Any]:
    """The in-toto Statement of a certificate (unsealed): the dataset is its one subject."""
    dataset = certificate["dataset"]
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": dataset["name"], "digest": {"sha256": dataset["sha256"]}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": certificate,
    }


def signed_envelope(certificate: dict[str, Any], private_key: Any) -> dict[str, Any]:
    """The certificate as a Statement in a DSSE envelope, signed with ``private_key``.

    The predicate gets a ``signer`` field (algorithm, base64 raw public key, key id), so
    ``darkmirror verify`` can check the signature without ``--public-key``, as it does for
    the darkmirror format; with ``--public-key`` only that key is trusted.

    Args:
        certificate: The certificate without seals (no ``content_sha256``, ``signature``).
        private_key: An Ed25519 private key (``cryptography``).
    """
    public = private_key.public_key()
    kid = keyid(public)
    signer = {
        "algorithm": "ed25519",
        "public_key": base64.b64encode(raw_public_key(public)).decode(),
        "keyid": kid,
    }
    # DSSE signs bytes, not JSON: any serialisation works; this one is compact and stable.
    payload = json.dumps(
        statement({**certificate, "signer": signer}),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()
    sig = private_key.sign(pae(PAYLOAD_TYPE, payload))
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": kid, "sig": base64.b64encode(sig).decode()}],
    }


def is_envelope(document: Any) -> bool:
    """Whether a parsed JSON document looks like a DSSE envelope (not a darkmirror one)."""
    return isinstance(document, dict) and "payloadType" in document and "payload" in document


@dataclass(frozen=True)
class Envelope:
    """A parsed DSSE envelope.

    Args:
        payload_type: How to read the payload (``application/vnd.in-toto+json``).
        payload: The signed bytes (the Statement's JSON).
        signatures: ``(keyid, signature bytes)`` pairs; keyid may be empty (DSSE makes it
            optional and only a hint: verifiers must not trust it).
    """

    payload_type: str
    payload: bytes
    signatures: tuple[tuple[str, bytes], ...]

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> Envelope:
        """Parse an envelope's JSON object.

        Raises:
            ValueError: Saying which field is missing or malformed.
        """
        payload_type = document.get("payloadType")
        if not isinstance(payload_type, str):
            raise ValueError("payloadType: expected a string")
        payload = _b64decode(document.get("payload"), "payload")
        signatures = document.get("signatures")
        if not isinstance(signatures, list):
            raise ValueError("signatures: expected a list")
        parsed = []
        for i, entry in enumerate(signatures):
            if not isinstance(entry, dict):
                raise ValueError(f"signatures[{i}]: expected an object with keyid and sig")
            kid = entry.get("keyid", "")
            if not isinstance(kid, str):
                raise ValueError(f"signatures[{i}].keyid: expected a string")
            parsed.append((kid, _b64decode(entry.get("sig"), f"signatures[{i}].sig")))
        return cls(payload_type, payload, tuple(parsed))


def _b64decode(value: Any, field: str) -> bytes:
    # DSSE lets an envelope use either the standard or the URL-safe base64 alphabet.
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected a base64 string")
    text = value.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"{field}: not base64") from exc
