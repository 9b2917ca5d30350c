"""The duplicates detector: exact duplicates by hash, near duplicates by MinHash and LSH.

A record's content is normalised (Unicode NFKC, case folded, whitespace collapsed, each
turn tagged with its role) and hashed: an equal hash is an exact duplicate of the first
record that had it. Otherwise the record's word shingles (``shingle`` consecutive words)
get a MinHash signature of ``num_perm`` values; the signature is cut into ``bands`` bands
of ``rows`` values, and a record sharing any band with an earlier one is a candidate. A
candidate is a near duplicate when the Jaccard similarity its stored 8-bit signature
estimates is at least ``near_threshold``. Bands and rows are chosen so that a pair at the
threshold becomes a candidate with probability at least 0.98.

Memory per record is fixed, whatever its length: a 16-byte content digest, ``bands``
8-byte band keys (each kept only while no earlier record holds it), ``num_perm`` bytes of
signature and an 8-byte position. With CPython's dictionaries that is about 1.2 KB per
record at the defaults (11 bands; tracemalloc measured 1.15 KB over 20,000 records);
``summary()["bytes_per_record"]`` gives the estimate for the settings.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from darkmirror.scan.detectors.base import Finding, ScanRecord, describe, share

_WORD = re.compile(r"\w+")


def normalise(record: ScanRecord) -> str:
    """The record's content as compared: roles kept, case and spacing ignored."""
    turns = (
        f"{m['role']}\x1f{' '.join(unicodedata.normalize('NFKC', m['content']).casefold().split())}"
        for m in record.messages
    )
    return "\x1e".join(turns)


def lsh_bands(num_perm: int, threshold: float, recall: float = 0.98) -> tuple[int, int]:
    """Fewest bands (then most rows) for which a pair at ``threshold`` Jaccard similarity
    shares a band with probability at least ``recall``: ``1 - (1 - t**r)**b``.

    Args:
        num_perm: MinHash values per signature; ``bands * rows`` does not exceed it.
        threshold: Jaccard similarity that must be caught.
        recall: Required probability of catching a pair at ``threshold``.
    """
    for bands in range(1, num_perm + 1):
        rows = num_perm // bands
        if 1 - (1 - threshold**rows) ** bands >= recall:
            return bands, rows
    return num_perm, 1


class DuplicatesDetector:
    """Flag records that repeat an earlier record exactly or nearly.

    Args:
        near_threshold: Least estimated Jaccard similarity of word shingles for a near
            duplicate; None turns near duplicates off.
        shingle: Words per shingle.
        num_perm: MinHash values per signature.
        seed: Seed of the MinHash functions (fixed, so scans are reproducible).

    Raises:
        ValueError: A threshold outside (0, 1], or fewer than 1 word per shingle.
    """

    name = "duplicates"
    version = "1"

    def __init__(
        self,
        near_threshold: float | None = 0.8,
        shingle: int = 3,
        num_perm: int = 64,
        seed: int = 0,
    ) -> None:
        if near_threshold is not None and not 0.0 < near_threshold <= 1.0:
            raise ValueError(f"duplicates near_threshold must be in (0, 1], got {near_threshold}")
        if shingle < 1 or num_perm < 8:
            raise ValueError("duplicates: shingle must be >= 1 and num_perm >= 8")
        self.threshold = near_threshold
        self.shingle = shingle
        self.num_perm = num_perm
        self.seed = seed
        self.bands, self.rows = lsh_bands(num_perm, near_threshold) if near_threshold else (0, 0)
        rng = np.random.default_rng(seed)
        # Multiply-shift hashing: (a * x + b) mod 2**64, top 32 bits; a odd.
        self._a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(
            1
        )
        self._b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
        self._exact: dict[bytes, int] = {}  # content digest -> first position
        self._bands: dict[int, int] = {}  # band key -> index of first record with it
        self._signatures = np.zeros((1024, num_perm), dtype=np.uint8)  # 8-bit MinHash
        self._positions = np.zeros(1024, dtype=np.int64)
        self._stored = 0
        self._records = 0
        self._exact_count = 0
        self._near_count = 0

    def describe(self) -> dict[str, Any]:
        """Name, version, threshold and the MinHash/LSH settings."""
        return describe(
            self,
            {
                "exact": "blake2b-128 of NFKC, case-folded, whitespace-collapsed turns with roles",
                "near": None
                if self.threshold is None
                else {
                    "shingle_words": self.shingle,
                    "num_perm": self.num_perm,
                    "bands": self.bands,
                    "rows": self.rows,
                    "seed": self.seed,
                    "verification": "Jaccard estimated from 8-bit MinHash values",
                },
            },
        )

    @property
    def key_dtype(self) -> np.dtype:
        """One record's keys: its position, content digest, whether it has a MinHash
        signature, its band keys and its 8-bit signature (fixed size, so a shard's keys
        stream to a file and back)."""
        return np.dtype(
            [
                ("position", "<i8"),
                ("digest", "V16"),
                ("signed", "u1"),
                ("bands", "<u8", (self.bands,)),
                ("small", "u1", (self.num_perm if self.threshold is not None else 0,)),
            ]
        )

    def keys(self, records: Sequence[ScanRecord]) -> np.ndarray:
        """The records' keys (see :attr:`key_dtype`): the costly part, hashing and MinHash,
        which depends on each record alone. A sharded scan computes them where the shard
        is read and matches them in record order in one place (:meth:`match`)."""
        keys = np.zeros(len(records), dtype=self.key_dtype)
        for i, record in enumerate(records):
            text = normalise(record)
            keys[i]["position"] = record.position
            keys[i]["digest"] = hashlib.blake2b(
                text.encode("utf-8", "surrogatepass"), digest_size=16
            ).digest()
            signature = self._minhash(text) if self.threshold is not None else None
            if signature is None:
                continue
            keys[i]["signed"] = 1
            # blake2b, not hash(): str and bytes hashes are salted per process.
            keys[i]["bands"] = [
                int.from_bytes(
                    hashlib.blake2b(
                        signature[band * self.rows : (band + 1) * self.rows].tobytes(),
                        digest_size=8,
                        person=band.to_bytes(2, "little"),
                    ).digest()
                )
                for band in range(self.bands)
            ]
            keys[i]["small"] = (signature & np.uint32(0xFF)).astype(np.uint8)
        return keys

    def match(self, keys: np.ndarray) -> list[list[Finding]]:
        """Findings per record, in the order given, against every record matched before."""
        found: list[list[Finding]] = []
        for row in keys:
            position = int(row["position"])
            first = self._exact.setdefault(bytes(row["digest"]), position)
            if first != position:
                self._exact_count += 1
                found.append(
                    [
                        Finding(
                            self.name,
                            "exact_duplicate",
                            "medium",
                            f"same content as the record at position {first}",
                            1.0,
                            None,
                        )
                    ]
                )
            elif row["signed"]:
                found.append(self._near(position, [int(k) for k in row["bands"]], row["small"]))
            else:
                found.append([])
        self._records += len(keys)
        return found

    def scan(self, records: Sequence[ScanRecord]) -> list[list[Finding]]:
        """Findings per record, pointing at the first record each one repeats."""
        return self.match(self.keys(records))

    def _near(self, position: int, keys: list[int], small: np.ndarray) -> list[Finding]:
        best: tuple[float, int] | None = None
        for key in keys:
            index = self._bands.get(key)
            if index is None:
                continue
            # b-bit MinHash: equal low bytes with probability J + (1 - J) / 256.
            agree = float(np.mean(self._signatures[index] == small))
            estimate = (agree - 1 / 256) / (1 - 1 / 256)
            if estimate >= self.threshold and (best is None or estimate > best[0]):  # type: ignore[operator]
                best = (estimate, index)
        index = self._store(position, small)
        for key in keys:
            self._bands.setdefault(key, index)
        if best is None:
            return []
        self._near_count += 1
        estimate, other = best
        return [
            Finding(
                self.name,
                "near_duplicate",
                "low",
                f"about {estimate:.0%} of word {self.shingle}-grams shared with the record "
                f"at position {int(self._positions[other])}",
                round(estimate, 4),
                None,
            )
        ]

    def _minhash(self, text: str) -> np.ndarray | None:
        # Roles and separators are not words, so "user" and "assistant" add no shingles.
        words = _WORD.findall(text.replace("\x1f", " ").replace("\x1e", " "))
        if not words:
            return None
        n = self.shingle
        grams = (
            {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}
            if len(words) >= n
            else {" ".join(words)}
        )
        # crc32 is stable across processes (str hashes are salted), so scans reproduce.
        x = np.fromiter((zlib.crc32(g.encode()) for g in grams), dtype=np.uint64, count=len(grams))
        hashed = (np.multiply.outer(x, self._a) + self._b) >> np.uint64(32)  # wraps mod 2**64
        return hashed.min(axis=0).astype(np.uint32)

    def _store(self, position: int, small: np.ndarray) -> int:
        if self._stored == len(self._positions):
            self._signatures = np.concatenate([self._signatures, np.zeros_like(self._signatures)])
            self._positions = np.concatenate([self._positions, np.zeros_like(self._positions)])
        self._signatures[self._stored] = small
        self._positions[self._stored] = position
        self._stored += 1
        return self._stored - 1

    def summary(self) -> dict[str, Any]:
        """Exact and near duplicate counts and shares, and the memory kept per record."""
        dict_entry = 100  # bytes per CPython dict entry with an int or bytes key
        per_record = dict_entry + (
            self.bands * dict_entry + self.num_perm + 8 if self.threshold else 0
        )
        return {
            "records": self._records,
            "exact_duplicates": self._exact_count,
            "near_duplicates": self._near_count,
            "share_exact": share(self._exact_count, self._records),
            "share_near": share(self._near_count, self._records),
            "distinct_contents": len(self._exact),
            "bytes_per_record": per_record,
        }
