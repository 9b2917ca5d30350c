"""Speed of the scan detectors over a chat JSONL file, detector by detector.

    python benchmarks/bench_detectors.py ../shared/em-data/data/insecure.jsonl

Reads the file into records (not timed), builds every detector with its defaults (timed
as ``setup_s``), then feeds the records in batches of ``--batch-size`` to each detector in
turn, as a scan does, and prints one JSON line: seconds and records per second per
detector and in total, flagged records per detector, the code detector's engines and how
many records each flagged, and the peak resident memory of the process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import psutil

from darkmirror.scan.detectors import ScanRecord, build_detectors


def read_records(path: Path) -> list[ScanRecord]:
    records = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if "messages" in row:
                messages = tuple(
                    {"role": m["role"], "content": m["content"]} for m in row["messages"]
                )
                records.append(ScanRecord(number, "chat", messages))  # type: ignore[arg-type]
            elif "prompt" in row:
                turns = (
                    {"role": "user", "content": row["prompt"]},
                    {"role": "assistant", "content": row["completion"]},
                )
                records.append(ScanRecord(number, "prompt_completion", turns))  # type: ignore[arg-type]
            else:
                records.append(
                    ScanRecord(number, "text", ({"role": "text", "content": row["text"]},))
                )  # type: ignore[arg-type]
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("jsonl", type=Path, help="dataset, one JSON record per line")
    parser.add_argument("--batch-size", type=int, default=512, help="records per detector call")
    parser.add_argument("--no-semgrep", action="store_true", help="code detector: bandit only")
    args = parser.parse_args()

    records = read_records(args.jsonl)
    load_before = os.getloadavg()
    start = time.perf_counter()
    detectors = build_detectors({"code": {"semgrep": False}} if args.no_semgrep else None)
    setup_s = time.perf_counter() - start

    seconds = dict.fromkeys((d.name for d in detectors), 0.0)
    flagged = dict.fromkeys((d.name for d in detectors), 0)
    start = time.perf_counter()
    for k in range(0, len(records), args.batch_size):
        batch = records[k : k + args.batch_size]
        for detector in detectors:
            t = time.perf_counter()
            found = detector.scan(batch)
            seconds[detector.name] += time.perf_counter() - t
            flagged[detector.name] += sum(bool(f) for f in found)
    total_s = time.perf_counter() - start
    code = next((d.summary() for d in detectors if d.name == "code"), None)

    print(
        json.dumps(
            {
                "dataset": args.jsonl.name,
                "records": len(records),
                "batch_size": args.batch_size,
                "setup_s": round(setup_s, 3),
                "scan_s": round(total_s, 2),
                "records_per_s": round(len(records) / total_s, 1),
                "detector_s": {name: round(s, 2) for name, s in seconds.items()},
                "detector_records_per_s": {
                    name: round(len(records) / s, 1) if s else None for name, s in seconds.items()
                },
                "flagged": flagged,
                "code_engines": code["engines"] if code else None,
                "code_flagged_by_engine": code["flagged_by_engine"] if code else None,
                "peak_rss_mb": round(psutil.Process().memory_info().rss / 2**20),
                "machine": {
                    "platform": platform.platform(),
                    "cpus_usable": len(os.sched_getaffinity(0)),
                    "python": platform.python_version(),
                },
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
            }
        )
    )


if __name__ == "__main__":
    main()
