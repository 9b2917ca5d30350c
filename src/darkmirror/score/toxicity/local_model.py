"""What the scorers that run a model on this machine share.

The longest text they score by default, and the digest that versions a scorer by its
weight files, so that a changed model shows in every result row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

DEFAULT_MAX_CHARS = 100_000


def files_sha256(paths: Iterable[Path]) -> str:
    """First 16 hex digits of the SHA-256 of the files' contents, in order."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()[:16]
