"""Peak memory of a sharded scan's merge (the driver's side) as the keys file grows.

    python benchmarks/bench_scan_merge.py --rows 60000 600000

A Ray scan's driver matches every shard's duplicates keys (177 bytes a record at the
defaults) in record order. For each size this writes a keys file of that many records
(all with the same content, so the detector's own index stays at one entry and only the
merge's memory is measured), then, in a fresh interpreter, runs the merge's key reader
over it and prints the process's peak RSS before and after. Flat means the merge holds
one chunk, whatever the file's size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

_CHILD = """
import resource, sys
from pathlib import Path
from darkmirror.scan.detectors.duplicates import DuplicatesDetector
from darkmirror.scan.scanner import _ordered_findings

detector = DuplicatesDetector()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
rows = sum(1 for _ in _ordered_findings([detector], [Path(sys.argv[1])]))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(rows, before, after)
"""


def write_keys(path: Path, rows: int) -> None:
    import numpy as np

    from darkmirror.scan.detectors.duplicates import DuplicatesDetector

    # In chunks: Linux carries a process's peak RSS over to the children it starts, so
    # this process must stay small for the child's figure to be the merge's own.
    dtype = DuplicatesDetector().key_dtype
    with path.open("wb") as handle:
        for start in range(0, rows, 65536):
            keys = np.zeros(min(65536, rows - start), dtype=dtype)
            keys["position"] = np.arange(start, start + len(keys))
            keys.tofile(handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[60_000, 600_000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for rows in args.rows:
            path = Path(tmp) / f"{rows}.keys"
            write_keys(path, rows)
            done = subprocess.run(
                [sys.executable, "-c", _CHILD, str(path)],
                capture_output=True,
                text=True,
                check=True,
            )
            matched, before, after = (int(x) for x in done.stdout.split())
            print(
                json.dumps(
                    {
                        "rows": matched,
                        "keys_mb": round(path.stat().st_size / 2**20, 1),
                        "peak_rss_before_mb": round(before / 1024, 1),
                        "peak_rss_after_mb": round(after / 1024, 1),
                    }
                ),
                flush=True,
            )
            path.unlink()


if __name__ == "__main__":
    main()
