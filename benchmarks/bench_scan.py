"""Time and peak memory of `darkmirror scan` at 1x and 10x a dataset's size.

    python benchmarks/bench_scan.py ../shared/em-data/data/insecure.jsonl --copies 1 10

Each size runs `darkmirror scan` in a child process (the 10x file is the dataset written 10
times over into a temporary directory) and reads the child's wall time and peak RSS from
`/usr/bin/time`-style accounting (``resource.getrusage(RUSAGE_CHILDREN)``, one child per
run, so the maximum is that child's). A streaming scan's peak memory should not grow with
the file. Prints one JSON line per size, with the load average: other jobs share the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def scan_once(data: Path, out: Path) -> dict[str, float]:
    start = time.perf_counter()
    # A fresh interpreter per run: getrusage(RUSAGE_CHILDREN) reports the largest child.
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import resource, sys; from darkmirror.cli import main;"
            "sys.argv=['darkmirror', 'scan', sys.argv[1], '--out', sys.argv[2], '--quiet'];"
            "code = 0\n"
            "try:\n    main()\nexcept SystemExit as e:\n    code = e.code or 0\n"
            "print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
            "sys.exit(code)",
            str(data),
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):  # 1 is a failed policy, still a finished scan
        raise SystemExit(proc.stderr[-2000:])
    rss_kb = next(
        int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("MAXRSS")
    )
    cert = json.loads(out.read_text())
    return {
        "wall_s": round(seconds, 1),
        "scan_s": cert["results"]["seconds"],
        "peak_rss_mb": round(rss_kb / 1024, 1),
        "records": cert["dataset"]["records"],
        "flagged": cert["results"]["flagged_records"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 10])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for copies in args.copies:
            data = args.data
            if copies > 1:
                data = Path(tmp) / f"x{copies}{args.data.suffix}"
                blob = args.data.read_bytes()
                with data.open("wb") as handle:
                    for _ in range(copies):
                        handle.write(blob if blob.endswith(b"\n") else blob + b"\n")
            figures = scan_once(data, Path(tmp) / f"cert-{copies}.json")
            print(
                json.dumps(
                    {
                        "copies": copies,
                        **figures,
                        "load_average": os.getloadavg()[0],
                        "cpus": os.cpu_count(),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
