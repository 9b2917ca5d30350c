"""The scan on Ray: a JSONL file cut into byte ranges, one task per shard, merged in order.

Each task builds its own detectors from the policy's settings and streams its shard
(:func:`darkmirror.scan.scanner.scan_shard`) into a work directory beside the findings file,
which every worker must see (one machine, or a shared filesystem: checked before the scan).
The driver then matches the duplicates detector's keys in record order, absorbs the other
detectors' counters and writes the findings (:func:`~darkmirror.scan.scanner.merge_shards`):
the certificate is the one a local scan writes.

CSV and Parquet files are scanned as one shard: a quoted CSV cell may hold a newline, so a
byte offset cannot tell where a record starts.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from darkmirror.scan.detectors.base import Detector
from darkmirror.scan.scanner import (
    ScanResult,
    ScanSettings,
    Shard,
    merge_shards,
    scan_shard,
    shard_workdir,
)

# Bytes read at a time while looking for a line start or counting lines.
_CHUNK = 1 << 24


def _next_line_start(handle: Any, offset: int) -> int:
    """The first line start at or after ``offset`` (0, or just past a newline)."""
    if offset == 0:
        return 0
    handle.seek(offset - 1)
    position = offset - 1
    while chunk := handle.read(1 << 20):  # never a whole over-long line in memory
        newline = chunk.find(b"\n")
        if newline >= 0:
            return position + newline + 1
        position += len(chunk)
    return position


def plan_shards(path: Path, count: int) -> list[Shard]:
    """Cut a JSONL file into at most ``count`` runs of whole lines of about equal size;
    any other file is one shard.

    Args:
        path: The dataset.
        count: Shards wanted (at least 1).
    """
    size = path.stat().st_size
    if path.suffix.lower() != ".jsonl" or count <= 1 or size == 0:
        return [Shard(0)]
    with path.open("rb") as handle:
        starts = sorted({_next_line_start(handle, size * i // count) for i in range(count)})
        starts = [s for s in starts if s < size]
        # Line numbers: the newlines before each start, counted in one pass.
        first_lines, newlines, read = [], 0, 0
        handle.seek(0)
        for start in starts:
            while read < start:
                chunk = handle.read(min(_CHUNK, start - read))
                newlines += chunk.count(b"\n")
                read += len(chunk)
            first_lines.append(newlines + 1)
    ends = [*starts[1:], size]
    return [
        Shard(i, start, end, line)
        for i, (start, end, line) in enumerate(zip(starts, ends, first_lines, strict=True))
    ]


def _scan_shard_task(
    path: str,
    shard: Shard,
    detector_config: Mapping[str, Any],
    workdir: str,
    settings: ScanSettings,
) -> dict[str, Any]:
    # Runs on a Ray worker: its own detectors, built from the same settings as the driver's.
    from darkmirror.scan.detectors import build_detectors

    detectors = build_detectors(detector_config)
    return scan_shard(Path(path), shard, detectors, Path(workdir), settings)


def scan_file_on_ray(
    path: Path,
    detectors: Sequence[Detector],
    detector_config: Mapping[str, Any],
    findings_path: Path,
    settings: ScanSettings,
    *,
    shards: int | None = None,
    address: str | None = None,
) -> ScanResult:
    """Scan ``path`` on Ray; the same result as :func:`~darkmirror.scan.scanner.scan_file`.

    Args:
        path: The dataset.
        detectors: The driver's detectors (built from ``detector_config``): they write the
            summaries and match the ordered detectors' keys.
        detector_config: The policy's ``[detectors]`` table, from which every task builds
            its own detectors.
        findings_path: Where the findings go.
        settings: Batching, record limit and the canary's sample.
        shards: Shards to cut a JSONL file into; None: one per CPU of the cluster.
        address: Ray cluster address; None starts a local cluster for the scan.
    """
    from darkmirror.runner.ray_executor import _cause, check_shared_storage, ray_session

    start = time.perf_counter()
    with ray_session(address) as ray, shard_workdir(findings_path) as workdir:
        check_shared_storage(ray, [workdir])
        count = shards or max(1, int(ray.cluster_resources().get("CPU", os.cpu_count() or 1)))
        task = ray.remote(num_cpus=1, max_retries=2)(_scan_shard_task)
        refs = [
            task.remote(str(path), shard, dict(detector_config), str(workdir), settings)
            for shard in plan_shards(path, count)
        ]
        try:
            outcomes = ray.get(refs)  # in shard order, whatever order they finished in
        except ray.exceptions.RayTaskError as exc:
            raise _cause(exc) from None  # a bad file reads as it would locally
        result = merge_shards(outcomes, detectors, workdir, findings_path, settings, absorb=True)
    result.seconds = time.perf_counter() - start
    return result
