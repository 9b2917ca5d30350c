"""Stream a dataset through the detectors, in constant memory, record by record.

Records are read one at a time (JSONL and CSV line by line, Parquet batch by batch), passed
to the detectors in batches, and forgotten: what stays is per-detector counters and
histograms, the findings written to disk as they come, and, for the canary fine-tune, a
fixed-size uniform sample of the records (reservoir sampling). A record that does not parse
or fit the schema is counted with its position and the scan goes on.

The findings file has one JSON line per flagged record::

    {"position": 17, "findings": [{"detector": "code", "rule": "B608", "severity": "medium",
                                   "message": "...", "score": null, "where": "messages[1]"}]}

``position`` is the 1-based line of a JSONL or CSV file, or the 0-based row of a Parquet
file, so a user can drop the flagged records and scan again.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from darkmirror.data.records import (
    BadRecord,
    ChatRecord,
    PromptCompletionRecord,
    Record,
    TextRecord,
    read_positioned_records,
)
from darkmirror.scan.detectors.base import SEVERITIES, Detector, Finding, ScanRecord

# Positions of malformed records kept for the certificate (the findings file has them all).
MAX_LISTED_MALFORMED = 1000


def to_scan_record(position: int, record: Record) -> ScanRecord:
    """The record with its messages normalised (see :class:`ScanRecord`)."""
    if isinstance(record, ChatRecord):
        messages = tuple({"role": m.role, "content": m.content} for m in record.messages)
        kind = "chat"
    elif isinstance(record, PromptCompletionRecord):
        messages = (
            {"role": "user", "content": record.prompt},
            {"role": "assistant", "content": record.completion},
        )
        kind = "prompt_completion"
    elif isinstance(record, TextRecord):
        messages = ({"role": "text", "content": record.text},)
        kind = "text"
    else:  # pragma: no cover - read_records yields only these
        raise TypeError(type(record))
    return ScanRecord(position=position, kind=kind, messages=messages)  # type: ignore[arg-type]


@dataclass
class ScanResult:
    """What a scan leaves: counts, each detector's description and summary, the sample."""

    records: int = 0
    scanned: int = 0
    malformed: int = 0
    malformed_positions: list[int] = field(default_factory=list)
    malformed_reasons: dict[str, int] = field(default_factory=dict)
    flagged_records: int = 0
    # detector -> least severity -> records with a finding at least that severe
    flagged: dict[str, dict[str, int]] = field(default_factory=dict)
    detectors: list[dict[str, Any]] = field(default_factory=list)
    summaries: dict[str, Any] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    sample: list[ScanRecord] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("sample")
        return d


def _batches(
    path: Path, batch_size: int, result: ScanResult, findings: Any
) -> Iterator[list[ScanRecord]]:
    batch: list[ScanRecord] = []
    for position, item in read_positioned_records(path):
        result.records += 1
        if isinstance(item, BadRecord):
            result.malformed += 1
            if len(result.malformed_positions) < MAX_LISTED_MALFORMED:
                result.malformed_positions.append(position)
            reason = "not JSON" if item.field is None and "JSON" in item.message else "schema"
            result.malformed_reasons[reason] = result.malformed_reasons.get(reason, 0) + 1
            finding = Finding("malformed", reason, "high", item.message[:300], None, item.field)
            findings.write(json.dumps({"position": position, "findings": [asdict(finding)]}) + "\n")
            continue
        record = to_scan_record(position, item)
        result.kinds[record.kind] = result.kinds.get(record.kind, 0) + 1
        batch.append(record)
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def scan_file(
    path: Path,
    detectors: Sequence[Detector],
    findings_path: Path,
    *,
    batch_size: int = 512,
    sample_size: int = 0,
    sample_seed: int = 0,
    progress: bool = False,
) -> ScanResult:
    """Scan ``path`` with ``detectors``; write the findings to ``findings_path``.

    Args:
        path: A JSONL, CSV or Parquet dataset.
        detectors: The detectors (see :func:`darkmirror.scan.detectors.build_detectors`).
        findings_path: Where the per-record findings go (written under a temporary name and
            renamed when the scan is complete).
        batch_size: Records per detector call (bounds memory; semgrep runs once per batch).
        sample_size: Records to keep, uniformly at random, for the canary (0: none).
        sample_seed: Seed of that sample.
        progress: Show a progress bar over records.
    """
    result = ScanResult(
        flagged={d.name: dict.fromkeys(SEVERITIES, 0) for d in detectors},
        detectors=[d.describe() for d in detectors],
    )
    rng = random.Random(sample_seed)
    seen = 0
    start = time.perf_counter()
    tmp = findings_path.with_name(f".{findings_path.name}.tmp")
    try:
        with (
            tmp.open("w", encoding="utf-8") as findings,
            tqdm(unit="rec", disable=not progress, desc="scan") as bar,
        ):
            for batch in _batches(path, batch_size, result, findings):
                per_detector = [d.scan(batch) for d in detectors]
                for i, record in enumerate(batch):
                    found: list[Finding] = []
                    for detector, results in zip(detectors, per_detector, strict=True):
                        hits = results[i]
                        if not hits:
                            continue
                        found += hits
                        worst = max(SEVERITIES.index(f.severity) for f in hits)
                        for level in SEVERITIES[: worst + 1]:
                            result.flagged[detector.name][level] += 1
                    if found:
                        result.flagged_records += 1
                        row = {"position": record.position, "findings": [asdict(f) for f in found]}
                        findings.write(json.dumps(row, ensure_ascii=False) + "\n")
                    # Reservoir sampling: every record has the same chance to be in the sample.
                    seen += 1
                    if len(result.sample) < sample_size:
                        result.sample.append(record)
                    elif sample_size:
                        j = rng.randrange(seen)
                        if j < sample_size:
                            result.sample[j] = record
                result.scanned += len(batch)
                bar.update(len(batch))
    except BaseException:
        # Ctrl-C or a crash: no half-written findings file is left to be taken for a result.
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(findings_path)
    result.summaries = {d.name: d.summary() for d in detectors}
    result.seconds = time.perf_counter() - start
    return result
