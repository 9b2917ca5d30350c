"""The LLM judge's answer cache: one SQLite file of raw judge answers, keyed by request.

A key (:func:`judge_cache_key`) is the hash of the judge model's name, the full prompt and
the request settings, not of the endpoint's URL: the same model behind another URL reuses
the answers. The cache holds the judge's raw answer (its top log-probabilities or its
text); scores are derived from it on every read.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from darkmirror.errors import DarkmirrorError

__all__ = ["CACHE_VERSION", "JudgeCache", "judge_cache_key"]

CACHE_VERSION = 1
"""Part of every cache key; bump it when the meaning of a cached answer changes."""


def judge_cache_key(model: str, prompt: str, request: Mapping[str, Any]) -> str:
    """The cache key of one judge request: independent of the endpoint's URL and key.

    Args:
        model: The judge model's name.
        prompt: The full judge prompt (the one user message).
        request: The request settings (``max_tokens``, ``temperature``, ...).
    """
    blob = json.dumps(
        {"version": CACHE_VERSION, "model": model, "prompt": prompt, "request": dict(request)},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class JudgeCache:
    """Judge answers in one SQLite file, safe to share across threads and processes.

    One connection guarded by a lock serves every thread (a lookup takes microseconds next
    to a request's milliseconds); WAL mode lets other processes read while one writes.

    Args:
        directory: Where the file ``judge.sqlite3`` lives (created if needed).

    Raises:
        DarkmirrorError: If the file exists but is not a readable SQLite database.
    """

    FILENAME = "judge.sqlite3"
    _CHUNK = 500  # keys per SELECT; SQLite allows at least 999 parameters

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / self.FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            # Autocommit (isolation_level=None): every answer is on disk once put() returns.
            self._conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, model TEXT NOT NULL,"
                " answer TEXT NOT NULL, created REAL NOT NULL)"
            )
        except sqlite3.DatabaseError as exc:
            raise DarkmirrorError(
                f"{self.path}: not a usable judge cache ({exc}); delete it to start afresh"
            ) from None

    def __len__(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Cached answers for the keys that have one.

        Args:
            keys: Cache keys from :func:`judge_cache_key`.
        """
        unique = list(dict.fromkeys(keys))
        found: dict[str, dict[str, Any]] = {}
        with self._lock:
            for start in range(0, len(unique), self._CHUNK):
                chunk = unique[start : start + self._CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    f"SELECT key, answer FROM answers WHERE key IN ({marks})", chunk
                )
                found.update((key, json.loads(answer)) for key, answer in rows)
        return found

    def put(self, key: str, model: str, answer: Mapping[str, Any]) -> None:
        """Store one answer (replacing any under the same key).

        Args:
            key: Its cache key.
            model: The judge model, kept for inspection.
            answer: The raw answer: ``{"method": "logprobs", "top_logprobs": {...}}`` or
                ``{"method": "text", "text": ...}``.
        """
        row = (key, model, json.dumps(answer, ensure_ascii=False), time.time())
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?)", row)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._conn.close()
