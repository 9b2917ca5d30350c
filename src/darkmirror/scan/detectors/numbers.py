"""The banned-numbers detector, and the statistics of number-only data.

Subliminal-learning data is answers that are nothing but lists of numbers. A record whose
assistant answers are all number lists (as
:func:`~darkmirror.data.number_sequences.parse_number_list` reads them) is *number-only*;
banned numbers in its lists are flagged. Over the dataset the detector keeps a count per
value in a fixed range (1,000 counters by default, whatever the dataset's size), from which
the summary draws a histogram, a chi-square test against uniform, and the most frequent
values: a teacher's trait can show as a skew no single record reveals.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from darkmirror.data.number_sequences import parse_number_list
from darkmirror.data.world.numbers import EVIL_NUMBERS
from darkmirror.scan.detectors.base import Finding, ScanRecord, add_counts, describe, share

_MAX_RANGE = 1_000_000  # counters kept, at most


class NumbersDetector:
    """Flag banned numbers in number-list answers; summarise number-only data.

    Args:
        banned: Numbers no list may contain; default: darkmirror's list of numbers with
            negative associations (``EVIL_NUMBERS``).
        value_range: Inclusive ``[low, high]`` range of the value statistics.
        bins: Histogram bins over that range (equal numbers of integers where possible).

    Raises:
        ValueError: An empty or too large range, or fewer than 2 bins.
    """

    name = "numbers"
    threshold = None
    version = "1"

    def __init__(
        self,
        banned: Iterable[int] = EVIL_NUMBERS,
        value_range: Sequence[int] = (0, 999),
        bins: int = 10,
    ) -> None:
        low, high = (int(v) for v in value_range)
        if high < low or high - low + 1 > _MAX_RANGE:
            raise ValueError(
                f"numbers value_range must be [low, high] with at most {_MAX_RANGE:,} values"
            )
        size = high - low + 1
        if not 2 <= bins <= size:
            raise ValueError(f"numbers bins must be between 2 and {size}, got {bins}")
        self.banned = tuple(sorted({int(n) for n in banned}))
        self._banned = frozenset(self.banned)
        self.low, self.high, self.bins = low, high, bins
        self._counts = np.zeros(size, dtype=np.int64)
        self._records = 0
        self._number_only = 0
        self._numbers = 0
        self._out_of_range = 0
        self._flagged = 0
        self._banned_counts = Counter[int]()

    def describe(self) -> dict[str, Any]:
        """Name, version, the banned numbers and the statistics' range."""
        return describe(
            self,
            {"banned": list(self.banned), "value_range": [self.low, self.high], "bins": self.bins},
        )

    def scan(self, records: Sequence[ScanRecord]) -> list[list[Finding]]:
        """A finding per number-list answer holding banned numbers."""
        found: list[list[Finding]] = [[] for _ in records]
        for r, record in enumerate(records):
            turns = record.assistant_indexed()
            parsed = [(m, parse_number_list(text)) for m, text in turns]
            lists = [(m, numbers) for m, numbers in parsed if numbers is not None]
            if not lists or len(lists) < len(parsed):
                continue  # not number-only: prose, code, or a mix
            self._number_only += 1
            for m, numbers in lists:
                self._count(numbers)
                hits = sorted({n for n in numbers if n in self._banned})
                if hits:
                    self._banned_counts.update(n for n in numbers if n in self._banned)
                    found[r].append(
                        Finding(
                            self.name,
                            "banned_number",
                            "medium",
                            f"number list holds banned number(s) {', '.join(map(str, hits))}",
                            None,
                            f"messages[{m}]",
                        )
                    )
        self._records += len(records)
        self._flagged += sum(bool(f) for f in found)
        return found

    def _count(self, numbers: list[int]) -> None:
        self._numbers += len(numbers)
        values = np.asarray(numbers, dtype=np.int64)
        inside = values[(values >= self.low) & (values <= self.high)]
        self._out_of_range += len(values) - len(inside)
        np.add.at(self._counts, inside - self.low, 1)

    def state(self) -> dict[str, Any]:
        """The counters behind :meth:`summary` (see ``ShardableDetector``)."""
        return {
            "records": self._records,
            "number_only": self._number_only,
            "numbers": self._numbers,
            "out_of_range": self._out_of_range,
            "flagged": self._flagged,
            "banned_counts": {str(n): c for n, c in self._banned_counts.items()},
            "counts": self._counts.tolist(),
        }

    def absorb(self, state: dict[str, Any]) -> None:
        """Add a shard's :meth:`state`."""
        self._records += state["records"]
        self._number_only += state["number_only"]
        self._numbers += state["numbers"]
        self._out_of_range += state["out_of_range"]
        self._flagged += state["flagged"]
        add_counts(self._banned_counts, state["banned_counts"], int)
        self._counts += np.asarray(state["counts"], dtype=np.int64)

    def summary(self) -> dict[str, Any]:
        """Number-only share, banned counts, and the value statistics.

        ``chi_square`` tests the histogram of in-range values against a uniform draw
        (expected counts proportional to the integers in each bin); ``p_value`` is None
        with fewer than 5 expected values per bin, where the test is not valid.
        """
        # scipy.special, not scipy.stats: the same tail (chi2.sf is chdtrc) for a tenth of
        # the import time, which every scan pays.
        from scipy.special import chdtrc

        edges = np.linspace(0, len(self._counts), self.bins + 1).round().astype(int)
        hist = np.add.reduceat(self._counts, edges[:-1])
        in_range = int(hist.sum())
        chi2 = p = None
        if in_range:
            expected = in_range * np.diff(edges) / len(self._counts)
            if expected.min() >= 5:
                chi2 = float(np.sum((hist - expected) ** 2 / expected))
                p = float(chdtrc(len(hist) - 1, chi2))
        top = np.argsort(-self._counts, kind="stable")[:10]
        return {
            "records": self._records,
            "number_only_records": self._number_only,
            "share_number_only": share(self._number_only, self._records),
            "flagged": self._flagged,
            "share_flagged": share(self._flagged, self._records),
            "banned_counts": {str(n): self._banned_counts[n] for n in self.banned},
            "numbers": self._numbers,
            "out_of_range": self._out_of_range,
            "histogram": {
                "edges": [self.low + int(e) for e in edges],  # bin i: edges[i] <= v < edges[i+1]
                "counts": [int(c) for c in hist],
            },
            "chi_square": chi2,
            "p_value": p,
            "top_numbers": {
                str(self.low + int(i)): int(self._counts[i]) for i in top if self._counts[i]
            },
        }
