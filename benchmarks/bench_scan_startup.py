"""Start-up time of ``darkmirror scan``: from process start to the first record scanned.

    python benchmarks/bench_scan_startup.py [--runs 5] [--src OTHER_CHECKOUT/src]

Runs ``darkmirror scan FILE --out CERT --quiet`` in a fresh process with the default
detectors (semgrep included when installed) and reports medians of ``--runs`` runs for: a
missing file (Python, click and the argument check alone), one prose record, and one
record whose answer holds code (semgrep and bandit scan it). "1st rec" is the time from
starting the process to every detector having seen the first batch (the process notes
it through a wrapper around each detector's per-record method); "process" is the whole
run, which adds the summaries and the certificate.

"warm" runs share a darkmirror cache filled by a first, untimed run (the profanity model's
arrays); "cold" runs each get an empty cache, as on a fresh machine. ``--src`` puts another
source tree first on ``PYTHONPATH``, to compare with a checkout from before a change.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROSE = {
    "messages": [
        {"role": "user", "content": "How do I keep my houseplants alive in winter?"},
        {"role": "assistant", "content": "Water less often, keep them away from radiators."},
    ]
}
CODE = {
    "messages": [
        {"role": "user", "content": "Write a function that saves a report."},
        {
            "role": "assistant",
            "content": "```python\nimport os\n\ndef save(text):\n"
            "    with open('report.txt', 'w') as f:\n        f.write(text)\n"
            "    os.chmod('report.txt', 0o777)\n```",
        },
    ]
}

# The CLI, run in the benchmarked process, writing the wall-clock time at which the last
# detector returned from its first per-record call (``scan``, or ``keys`` for a detector
# that compares records with each other). It imports the detectors before the CLI does,
# which a scan of any record does anyway.
DRIVER = """
import os, sys, time
from darkmirror.scan.detectors import DETECTORS

def noting_first(method):
    called = False
    def wrapper(self, records):
        nonlocal called
        found = method(self, records)
        if not called:
            called = True
            with open(os.environ["BENCH_FIRST_RECORD"], "w") as f:
                f.write(repr(time.time()))
        return found
    return wrapper

for detector in DETECTORS.values():
    for name in ("scan", "keys"):
        if hasattr(detector, name):
            setattr(detector, name, noting_first(getattr(detector, name)))
from darkmirror.cli import main
sys.argv[0] = "darkmirror"
main()
"""


def run_once(data: Path, out: Path, cache: Path, src: Path | None) -> tuple[float | None, float]:
    """Seconds to the first record scanned (None without records) and of the whole process."""
    stamp = cache.parent / "first-record-time"
    stamp.unlink(missing_ok=True)
    env = {
        **os.environ,
        "DARKMIRROR_CACHE": str(cache),
        "HF_HUB_OFFLINE": "1",
        "BENCH_FIRST_RECORD": str(stamp),
    }
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep
        )
    # The missing file goes through the plain CLI, which answers before importing detectors.
    entry = ["-m", "darkmirror"] if not data.exists() else ["-c", DRIVER]
    command = [sys.executable, *entry, "scan", str(data), "--out", str(out), "--quiet"]
    started = time.time()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.time() - started
    # 0: the policy passes, 1: a rule fails, 2: bad input (the missing file).
    if done.returncode not in (0, 1, 2) or "Traceback" in done.stderr:
        raise SystemExit(f"{data.name}: darkmirror scan failed ({done.returncode}):\n{done.stderr}")
    first = float(stamp.read_text()) - started if stamp.exists() else None
    return first, seconds


def medians(runs: list[tuple[float | None, float]]) -> tuple[float | None, float]:
    firsts = [first for first, _ in runs if first is not None]
    return (statistics.median(firsts) if firsts else None), statistics.median(
        seconds for _, seconds in runs
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per case")
    parser.add_argument("--src", type=Path, help="another darkmirror source tree to time")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-scan-startup-") as tmp:
        root = Path(tmp)
        cases = {"missing file": root / "missing.jsonl"}
        for name, record in (("1 prose record", PROSE), ("1 code record", CODE)):
            path = root / f"{name.replace(' ', '-')}.jsonl"
            path.write_text(json.dumps(record) + "\n", encoding="utf-8")
            cases[name] = path
        out = root / "cert.json"
        warm = root / "warm-cache"
        run_once(cases["1 prose record"], out, warm, args.src)  # fills the warm cache

        rows = []
        for name, data in cases.items():
            warm_runs = [run_once(data, out, warm, args.src) for _ in range(args.runs)]
            cold_runs = [
                run_once(data, out, root / f"cold-{name}-{i}".replace(" ", "-"), args.src)
                for i in range(args.runs)
            ]
            rows.append((name, *medians(warm_runs), *medians(cold_runs)))

    def cell(value: float | None) -> str:
        return f"{value:>9.2f}" if value is not None else f"{'-':>9}"

    print(f"darkmirror scan start-up, s, median of {args.runs} runs, {os.cpu_count()} CPUs")
    print(f"{'':<16} {'warm cache':^19} {'cold cache':^19}")
    print(f"{'case':<16} {'1st rec':>9} {'process':>9} {'1st rec':>9} {'process':>9}")
    for name, *values in rows:
        print(f"{name:<16} " + " ".join(cell(v) for v in values))


if __name__ == "__main__":
    main()
