"""Time and peak memory of `darkmirror scan` at several multiples of a dataset's size.

    python benchmarks/bench_scan.py ../shared/em-data/data/insecure.jsonl --copies 1 10 100 \
        [--executor ray --shards 2]

Each size runs `darkmirror scan` in a child process (the Nx file is the dataset written N
times over into a temporary directory) and reads the child's wall time and its own peak RSS
(``getrusage(RUSAGE_SELF)`` inside it). Every 0.25 s the benchmark also reads the RSS of
every process under the child (psutil): on Ray, the shard workers (``ray::`` processes) are
among them, so ``worker_peak_rss_mb`` is the largest a worker reached; ``tree_peak_rss_mb``
is the most the whole tree held at once (Ray's own daemons and semgrep's processes
included). A streaming scan's memory should not grow with the file. Prints one JSON line per
size, with the load average: other jobs share the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def _sample_tree(root: int, peaks: dict[str, float], stop: threading.Event) -> None:
    import psutil

    try:
        parent = psutil.Process(root)
    except psutil.NoSuchProcess:
        return
    while not stop.wait(0.25):
        try:
            procs = [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        total = 0.0
        for proc in procs:
            try:
                rss = proc.memory_info().rss / 2**20
                name = proc.name()
            except psutil.Error:
                continue
            total += rss
            if name.startswith("ray::") and "IDLE" not in name:
                peaks["worker"] = max(peaks["worker"], rss)
        peaks["tree"] = max(peaks["tree"], total)


def scan_once(data: Path, out: Path, extra: list[str]) -> dict[str, float]:
    start = time.perf_counter()
    # A fresh interpreter per run; it prints its own peak RSS at the end.
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import resource, sys; from darkmirror.cli import main;"
            "sys.argv=['darkmirror', 'scan', sys.argv[1], '--out', sys.argv[2], '--quiet',"
            " *sys.argv[3:]];"
            "code = 0\n"
            "try:\n    main()\nexcept SystemExit as e:\n    code = e.code or 0\n"
            "print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
            "sys.exit(code)",
            str(data),
            str(out),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peaks = {"worker": 0.0, "tree": 0.0}
    stop = threading.Event()
    sampler = threading.Thread(target=_sample_tree, args=(proc.pid, peaks, stop), daemon=True)
    sampler.start()
    _, stderr = proc.communicate()
    stop.set()
    sampler.join()
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1):  # 1 is a failed policy, still a finished scan
        raise SystemExit(stderr[-2000:])
    rss_kb = next(int(line.split()[1]) for line in stderr.splitlines() if line.startswith("MAXRSS"))
    cert = json.loads(out.read_text())
    return {
        "wall_s": round(seconds, 1),
        "scan_s": cert["results"]["seconds"],
        "records_per_s": round(cert["dataset"]["records"] / cert["results"]["seconds"], 1),
        "peak_rss_mb": round(rss_kb / 1024, 1),
        "worker_peak_rss_mb": round(peaks["worker"], 1) or None,
        "tree_peak_rss_mb": round(peaks["tree"], 1),
        "records": cert["dataset"]["records"],
        "flagged": cert["results"]["flagged_records"],
        "sha": cert["findings"]["sha256"][:16],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--executor", choices=["local", "ray"], default="local")
    parser.add_argument("--shards", type=int, help="With --executor ray.")
    args = parser.parse_args()
    extra = ["--executor", args.executor]
    if args.shards:
        extra += ["--shards", str(args.shards)]
    with tempfile.TemporaryDirectory() as tmp:
        for copies in args.copies:
            data = args.data
            if copies > 1:
                data = Path(tmp) / f"x{copies}{args.data.suffix}"
                blob = args.data.read_bytes()
                with data.open("wb") as handle:
                    for _ in range(copies):
                        handle.write(blob if blob.endswith(b"\n") else blob + b"\n")
            figures = scan_once(data, Path(tmp) / f"cert-{copies}.json", extra)
            print(
                json.dumps(
                    {
                        "copies": copies,
                        "executor": args.executor,
                        "shards": args.shards,
                        **figures,
                        "load_average": os.getloadavg()[0],
                        "cpus": os.cpu_count(),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
