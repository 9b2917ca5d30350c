"""The same run on the local and the Ray executor: wall time and Ray's overhead.

    python benchmarks/bench_executors.py [SPEC] [--set KEY=VALUE ...] [--repeat N]

Runs the spec (default: the emergent-misalignment experiment) from scratch into two fresh
run directories, once in-process and once with ``--executor ray`` (a local Ray cluster the
command starts), in child processes, with the organism already in the cache (it is built
first if needed, and not timed). Prints both wall times, Ray's overhead as a share of the
local wall time, and whether the two summaries are identical. On two cores the steps
cannot run much in parallel, so this measures the executor's cost, not its speed-up
(``benchmarks/plan_schedule.py`` gives that). With ``--repeat N`` the pair runs N times
(local then ray, alternating, so a slow spell of the machine hits both) and the medians
are printed too: on a shared two-core machine one pair is not enough to read.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(spec: str | None, out: Path, extra: list[str]) -> float:
    command = [
        sys.executable,
        "-m",
        "darkmirror",
        "run",
        *([spec] if spec else []),
        "--out",
        str(out),
        "--quiet",
        *extra,
    ]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    overrides = [f"--set={o}" for o in args.overrides]
    subprocess.run(
        [sys.executable, "-m", "darkmirror", "organism", "--quiet"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    pairs = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            local = _run(args.spec, Path(tmp) / "local", overrides)
            ray = _run(args.spec, Path(tmp) / "ray", [*overrides, "--executor", "ray"])
            same = (Path(tmp) / "local" / "summary.json").read_text() == (
                Path(tmp) / "ray" / "summary.json"
            ).read_text()
        pairs.append((local, ray))
        print(f"[{i + 1}/{args.repeat}] local {local:.1f} s; ray {ray:.1f} s; overhead "
              f"{100 * (ray - local) / local:+.1f}% of the local wall time; summaries "
              f"identical: {same}", flush=True)  # fmt: skip
    if args.repeat > 1:
        local, ray = (statistics.median(p[k] for p in pairs) for k in (0, 1))
        print(f"median local {local:.1f} s; median ray {ray:.1f} s; overhead "
              f"{100 * (ray - local) / local:+.1f}%")  # fmt: skip


if __name__ == "__main__":
    main()
