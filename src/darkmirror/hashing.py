"""Content hashes: what names a step's directory, and fingerprints of files a step reads.

A step is named by the hash of everything that determines its output; a model or answers
file on disk enters that hash by a fingerprint of its files (names, sizes, modification
times), so replacing it invalidates the steps that used it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

__all__ = ["content_hash", "directory_fingerprint", "file_fingerprint"]


def content_hash(value: Any) -> str:
    """A short, stable hash of any JSON-serialisable value (keys sorted)."""
    blob = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def directory_fingerprint(*refs: str | None) -> str | None:
    """Names, sizes and times of the files of local model directories (None for hub ids),
    so that a model replaced on disk invalidates the steps that used it."""
    entries = []
    for ref in refs:
        if ref and Path(ref).expanduser().is_dir():
            for p in sorted(Path(ref).expanduser().rglob("*")):
                if p.is_file():
                    st = p.stat()
                    entries.append((str(p), st.st_size, st.st_mtime_ns))
    return content_hash(entries) if entries else None


def file_fingerprint(path: str | Path) -> str | None:
    """SHA-256 of a file's bytes (None when it does not exist): the same file gives the same
    fingerprint wherever it lies, so a run moved to another machine still resumes."""
    p = Path(path).expanduser()
    if not p.is_file():
        return None
    digest = hashlib.sha256()
    with p.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
