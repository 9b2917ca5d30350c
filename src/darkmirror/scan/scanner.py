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

A scan is one or more **shards** (byte ranges of a JSONL file, each a run of whole lines):
:func:`scan_shard` streams one, with its own copy of the detectors, and leaves its findings,
the keys of the detectors that compare records with each other (duplicates) and its
detectors' counters in a work directory; :func:`merge_shards` then matches those keys in
record order, absorbs the counters and writes the findings in record order. A local scan is
one shard in this process; ``darkmirror.scan.distributed`` runs many on Ray. Either way
the result is the same: every detector's findings depend on its record alone except the
ordered ones, which see every record in file order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import heapq
import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from tqdm.auto import tqdm

from darkmirror.data.records import (
    BadRecord,
    ChatRecord,
    PromptCompletionRecord,
    Record,
    TextRecord,
    read_jsonl_shard,
    read_positioned_records,
)
from darkmirror.errors import DarkmirrorError
from darkmirror.scan.detectors.base import SEVERITIES, Detector, Finding, ScanRecord

# Positions of malformed records kept for the certificate (the findings file has them all).
MAX_LISTED_MALFORMED = 1000
# Rows of keys matched at a time when shards are merged: bounds the merge's memory.
_MERGE_CHUNK = 65536


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


@dataclass(frozen=True)
class Shard:
    """A run of whole lines of a JSONL file, or a whole file (``end`` None).

    Args:
        index: Its place among the shards, from 0.
        start: Byte offset of its first line.
        end: Byte offset just past its last line; None: to the end of the file.
        first_line: Line number of its first line.
    """

    index: int
    start: int = 0
    end: int | None = None
    first_line: int = 1


@dataclass(frozen=True)
class ScanSettings:
    """How records are read and batched, and the canary's sample.

    Args:
        batch_size: Records per detector call (bounds memory; semgrep runs once per batch).
        sample_size: Records to keep, uniformly at random, for the canary (0: none).
        sample_seed: Seed of that sample.
        max_record_bytes: Longest record (JSONL line, CSV field) read; a longer one is
            malformed ("too large") and skipped without being held in memory.
    """

    batch_size: int = 512
    sample_size: int = 0
    sample_seed: int = 0
    max_record_bytes: int | None = None


def is_ordered(detector: Detector) -> bool:
    """Whether the detector compares records with each other (``keys`` then ``match`` in
    record order, as the duplicates detector does) rather than judging each alone."""
    return hasattr(detector, "keys") and hasattr(detector, "match")


def _sample_key(seed: int, position: int) -> int:
    # A keyed hash of the position: the records with the smallest keys are a uniform sample
    # that does not depend on how the file was cut into shards (a bottom-k sample).
    digest = hashlib.blake2b(
        position.to_bytes(8, "little", signed=True), digest_size=8, key=seed.to_bytes(8, "little")
    ).digest()
    return int.from_bytes(digest, "little")


def _record_json(record: ScanRecord) -> dict[str, Any]:
    return {"position": record.position, "kind": record.kind, "messages": list(record.messages)}


def _atomic_json(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, ensure_ascii=False))
    tmp.replace(path)


def _read(path: Path, shard: Shard, settings: ScanSettings) -> Iterator[tuple[int, Any]]:
    if shard.end is None and shard.start == 0:
        return read_positioned_records(path, max_record_bytes=settings.max_record_bytes)
    return read_jsonl_shard(
        path,
        shard.start,
        shard.end if shard.end is not None else os.path.getsize(path),
        shard.first_line,
        max_record_bytes=settings.max_record_bytes,
    )


def scan_shard(
    path: Path,
    shard: Shard,
    detectors: Sequence[Detector],
    workdir: Path,
    settings: ScanSettings,
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """Stream one shard through the detectors; leave its parts in ``workdir``.

    Writes ``shard-NNNNN.findings.jsonl`` (the findings of the detectors that judge each
    record alone, and the malformed records), ``shard-NNNNN.<detector>.keys`` for each
    ordered detector, and returns (and writes, as ``shard-NNNNN.json``, last, so its
    presence means the shard is complete) the shard's counts, its detectors' states and
    its part of the canary's sample. Memory stays flat: records go by in batches.
    """
    name = f"shard-{shard.index:05d}"
    alone = [d for d in detectors if not is_ordered(d)]
    ordered = [d for d in detectors if is_ordered(d)]
    out: dict[str, Any] = {
        "shard": asdict(shard),
        "records": 0,
        "scanned": 0,
        "malformed": 0,
        "malformed_positions": [],
        "malformed_reasons": {},
        "kinds": {},
        "flagged": {d.name: dict.fromkeys(SEVERITIES, 0) for d in alone},
    }
    sample: list[tuple[int, int, dict[str, Any]]] = []  # max-heap of (-key, position, record)
    findings_file = workdir / f"{name}.findings.jsonl"
    key_files = {d.name: workdir / f"{name}.{d.name}.keys" for d in ordered}
    handles: list[IO[Any]] = []
    try:
        findings = findings_file.open("w", encoding="utf-8")
        handles.append(findings)
        keys_out = {n: p.open("wb") for n, p in key_files.items()}
        handles += keys_out.values()
        with tqdm(unit="rec", disable=not progress, desc="scan") as bar:
            for batch, malformed in _batches(
                _read(path, shard, settings), settings.batch_size, out
            ):
                rows = list(malformed)  # written with the batch's rows, in record order
                for detector in ordered:
                    keys_out[detector.name].write(detector.keys(batch).tobytes())  # type: ignore[attr-defined]
                per_detector = [d.scan(batch) for d in alone]
                for i, record in enumerate(batch):
                    found: list[Finding] = []
                    for detector, results in zip(alone, per_detector, strict=True):
                        found += results[i]
                        _count_flagged(out["flagged"][detector.name], results[i])
                    if found:
                        rows.append((record.position, [asdict(f) for f in found]))
                    if settings.sample_size:
                        key = _sample_key(settings.sample_seed, record.position)
                        item = (-key, record.position, _record_json(record))
                        if len(sample) < settings.sample_size:
                            heapq.heappush(sample, item)
                        elif item > sample[0]:
                            heapq.heapreplace(sample, item)
                for position, found_rows in sorted(rows, key=lambda r: r[0]):
                    row = {"position": position, "findings": found_rows}
                    findings.write(json.dumps(row, ensure_ascii=False) + "\n")
                out["scanned"] += len(batch)
                bar.update(len(batch))
    finally:
        for handle in handles:
            handle.close()
    # A detector without a state (a plugin's) scans in one piece only: nothing to absorb.
    out["states"] = {d.name: d.state() for d in alone if hasattr(d, "state")}
    out["sample"] = [[-neg, record] for neg, _, record in sorted(sample, key=lambda t: t[1])]
    _atomic_json(workdir / f"{name}.json", out)
    return out


def _count_flagged(counts: dict[str, int], hits: Sequence[Finding]) -> None:
    if hits:
        worst = max(SEVERITIES.index(f.severity) for f in hits)
        for level in SEVERITIES[: worst + 1]:
            counts[level] += 1


def _batches(
    items: Iterator[tuple[int, Any]], batch_size: int, out: dict[str, Any]
) -> Iterator[tuple[list[ScanRecord], list[tuple[int, list[dict[str, Any]]]]]]:
    """Batches of records, each with the malformed records read since the last one (as
    findings rows); counts every record into ``out``."""
    batch: list[ScanRecord] = []
    malformed: list[tuple[int, list[dict[str, Any]]]] = []
    for position, item in items:
        out["records"] += 1
        if isinstance(item, BadRecord):
            out["malformed"] += 1
            if len(out["malformed_positions"]) < MAX_LISTED_MALFORMED:
                out["malformed_positions"].append(position)
            reasons = out["malformed_reasons"]
            reasons[item.reason] = reasons.get(item.reason, 0) + 1
            finding = Finding(
                "malformed", item.reason, "high", item.message[:300], None, item.field
            )
            malformed.append((position, [asdict(finding)]))
            continue
        record = to_scan_record(position, item)
        out["kinds"][record.kind] = out["kinds"].get(record.kind, 0) + 1
        batch.append(record)
        if len(batch) >= batch_size:
            yield batch, malformed
            batch, malformed = [], []
    if batch or malformed:
        yield batch, malformed


def _ordered_findings(
    detectors: Sequence[Any], key_files: Sequence[Path]
) -> Iterator[tuple[int, list[Finding]]]:
    """``(position, findings)`` of the ordered detectors, record by record, in file order."""
    if not detectors:
        return
    # Read in chunks, not through np.memmap: a memory map's pages count in the driver's
    # RSS (and a container's memory limit) until the map is closed, 177 bytes per record
    # for the duplicates keys; chunked reads keep the merge at one chunk.
    with contextlib.ExitStack() as stack:
        handles = [stack.enter_context(p.open("rb")) for p in key_files]
        while True:
            chunks = [
                np.fromfile(h, dtype=d.key_dtype, count=_MERGE_CHUNK)
                for d, h in zip(detectors, handles, strict=True)
            ]
            if not len(chunks[0]):
                return
            results = [d.match(chunk) for d, chunk in zip(detectors, chunks, strict=True)]
            for i, position in enumerate(chunks[0]["position"]):
                yield int(position), [f for per in results for f in per[i]]
            del chunks, results  # before the next chunk is read: one chunk at a time


def _rows(path: Path) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            yield row["position"], row["findings"]


def merge_shards(
    outcomes: Sequence[dict[str, Any]],
    detectors: Sequence[Detector],
    workdir: Path,
    findings_path: Path,
    settings: ScanSettings,
    *,
    absorb: bool,
) -> ScanResult:
    """Put the shards together, in order, into one result and one findings file.

    Args:
        outcomes: What :func:`scan_shard` returned for each shard, in file order.
        detectors: The copies that write the summaries; the ordered ones match every
            shard's keys here, in record order.
        workdir: Where the shards left their parts.
        findings_path: The findings file (written under a temporary name, then renamed).
        settings: The scan's settings (the sample's size).
        absorb: Add each shard's detector states into ``detectors`` (False when the shard
            ran with these very detectors, which already hold them).
    """
    order = {d.name: i for i, d in enumerate(detectors)}
    ordered = [d for d in detectors if is_ordered(d)]
    result = ScanResult(
        flagged={d.name: dict.fromkeys(SEVERITIES, 0) for d in detectors},
        detectors=[d.describe() for d in detectors],
    )
    sample: list[tuple[int, dict[str, Any]]] = []
    tmp = findings_path.with_name(f".{findings_path.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as findings:
            for outcome in outcomes:
                _add_counts(result, outcome)
                for detector in detectors:
                    if absorb and not is_ordered(detector):
                        if detector.name not in outcome["states"]:
                            raise DarkmirrorError(
                                f"detector {detector.name!r} has no state() and absorb(): it "
                                "cannot be merged from shards; scan with the local executor"
                            )
                        detector.absorb(outcome["states"][detector.name])  # type: ignore[attr-defined]
                name = f"shard-{outcome['shard']['index']:05d}"
                worker_rows = _rows(workdir / f"{name}.findings.jsonl")
                ordered_rows = _ordered_findings(
                    ordered, [workdir / f"{name}.{d.name}.keys" for d in ordered]
                )
                for position, rows in _merge_by_position(worker_rows, ordered_rows):
                    if rows and rows[0].get("detector") == "malformed":
                        findings.write(json.dumps({"position": position, "findings": rows}) + "\n")
                        continue
                    if not rows:
                        continue
                    rows.sort(key=lambda f: order[f["detector"]])  # stable: detector order
                    for detector in ordered:
                        _count_flagged(
                            result.flagged[detector.name],
                            [Finding(**f) for f in rows if f["detector"] == detector.name],
                        )
                    result.flagged_records += 1
                    row = {"position": position, "findings": rows}
                    findings.write(json.dumps(row, ensure_ascii=False) + "\n")
                sample += [(key, record) for key, record in outcome["sample"]]
                sample = sorted(sample, key=lambda t: t[0])[: settings.sample_size]
    except BaseException:
        # Ctrl-C or a crash: no half-written findings file is left to be taken for a result.
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(findings_path)
    result.summaries = {d.name: d.summary() for d in detectors}
    result.sample = [
        ScanRecord(r["position"], r["kind"], tuple(r["messages"]))
        for _, r in sorted(sample, key=lambda t: t[1]["position"])
    ]
    return result


def _add_counts(result: ScanResult, outcome: dict[str, Any]) -> None:
    result.records += outcome["records"]
    result.scanned += outcome["scanned"]
    result.malformed += outcome["malformed"]
    room = MAX_LISTED_MALFORMED - len(result.malformed_positions)
    result.malformed_positions += outcome["malformed_positions"][:room]
    for target, counts in (
        (result.malformed_reasons, outcome["malformed_reasons"]),
        (result.kinds, outcome["kinds"]),
    ):
        for key, count in counts.items():
            target[key] = target.get(key, 0) + count
    for name, levels in outcome["flagged"].items():
        for level, count in levels.items():
            result.flagged[name][level] += count


def _merge_by_position(
    worker: Iterator[tuple[int, list[dict[str, Any]]]],
    ordered: Iterator[tuple[int, list[Finding]]],
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """Both streams, sorted by position, joined: one ``(position, findings)`` per record
    that has a finding in either (a record absent from one stream had none there)."""
    a, b = next(worker, None), next(ordered, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            yield a  # type: ignore[misc]
            a = next(worker, None)
        elif a is None or b[0] < a[0]:
            if b[1]:
                yield b[0], [asdict(f) for f in b[1]]
            b = next(ordered, None)
        else:
            yield a[0], a[1] + [asdict(f) for f in b[1]]
            a, b = next(worker, None), next(ordered, None)


def scan_file(
    path: Path,
    detectors: Sequence[Detector],
    findings_path: Path,
    settings: ScanSettings | None = None,
    *,
    batch_size: int | None = None,
    sample_size: int | None = None,
    sample_seed: int | None = None,
    max_record_bytes: int | None = None,
    progress: bool = False,
) -> ScanResult:
    """Scan ``path`` with ``detectors`` in this process; write the findings to
    ``findings_path`` (under a temporary name, renamed when the scan is complete).

    Args:
        path: A JSONL, CSV or Parquet dataset.
        detectors: The detectors (see :func:`darkmirror.scan.detectors.build_detectors`).
        findings_path: Where the per-record findings go.
        settings: Batching, record limit and the canary's sample (default: the defaults).
        batch_size, sample_size, sample_seed, max_record_bytes: Each, when given, replaces
            that field of ``settings`` (see :class:`ScanSettings`).
        progress: Show a progress bar over records.
    """
    given = {
        "batch_size": batch_size,
        "sample_size": sample_size,
        "sample_seed": sample_seed,
        "max_record_bytes": max_record_bytes,
    }
    settings = dataclasses.replace(
        settings or ScanSettings(), **{k: v for k, v in given.items() if v is not None}
    )
    start = time.perf_counter()
    with shard_workdir(findings_path) as workdir:
        outcome = scan_shard(path, Shard(0), detectors, workdir, settings, progress=progress)
        result = merge_shards([outcome], detectors, workdir, findings_path, settings, absorb=False)
    result.seconds = time.perf_counter() - start
    return result


@contextlib.contextmanager
def shard_workdir(findings_path: Path) -> Iterator[Path]:
    """The directory beside the findings file where shards leave their parts; removed when
    the scan ends, finished or not (a rerun scans again)."""
    path = findings_path.with_name(f".{findings_path.name}.parts")
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
