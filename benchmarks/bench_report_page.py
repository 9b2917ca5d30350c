"""How fast report.html opens and filters on a 200,000-answer run, in headless Chromium.

    python benchmarks/bench_report_page.py [--answers 200000] [--filler-words 80] [--keep DIR]

Writes a synthetic finished run (``tests/report/synthetic_run.py``: seven models, eight
questions, judge, reference and toxicity scores; answers padded to about 620 characters with
words drawn at random, so they compress under gzip about as real text does), builds its
``report.html`` (timed in Python), then opens the file in the system Chromium
(``/usr/bin/chromium``, through playwright) and reads the page's own marks (from the start of
navigation): the file read, the HTML parsed, the index of the rows decoded, and the first
page of results on screen (the open time). Each filter is timed inside the
page from the change to the rendered first page of results (``darkmirrorPage.lastFilter``),
best and median of ``--repeats``, after the search index that the page builds in the
background is ready. Prints one JSON object with the machine and its load average.
Targets: open under 3 s, a filter under 300 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

from darkmirror.report.html import write_report_page

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "report"))
from synthetic_run import write_synthetic_run

CHROMIUM = "/usr/bin/chromium"


def _timed_filter(page: Page, action: Any, repeats: int, reset: Any) -> dict[str, float]:
    """Best and median in-page time of a filter (``action``), resetting in between."""
    times = []
    count = 0
    for _ in range(repeats):
        reset()
        before = page.evaluate("window.darkmirrorPage.applied")
        wall = time.perf_counter()
        action()
        page.wait_for_function(f"window.darkmirrorPage.applied > {before}")
        wall = time.perf_counter() - wall
        last = page.evaluate("window.darkmirrorPage.lastFilter")
        times.append(last["ms"])
        count = last["count"]
    return {
        "best_ms": round(min(times), 1),
        "median_ms": round(statistics.median(times), 1),
        "matches": count,
        "last_wall_ms_incl_debounce": round(wall * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=200_000)
    parser.add_argument("--filler-words", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="write the run here and keep it")
    args = parser.parse_args()

    tmp = None if args.keep else tempfile.TemporaryDirectory()
    run = args.keep or Path(tmp.name) / "run"  # type: ignore[union-attr]
    t = time.perf_counter()
    write_synthetic_run(run, args.answers, filler_words=args.filler_words)
    synth_s = time.perf_counter() - t
    rows_bytes = (run / "rows.jsonl").stat().st_size
    with (run / "rows.jsonl").open() as f:
        answer_chars = [len(json.loads(line)["answer"]) for line in f]

    t = time.perf_counter()
    page_file = write_report_page(run)
    build_s = time.perf_counter() - t
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    result: dict[str, Any] = {
        "answers": args.answers,
        "rows_jsonl_mb": round(rows_bytes / 1e6, 1),
        "mean_answer_chars": round(statistics.mean(answer_chars)),
        "synthesise_s": round(synth_s, 1),
        "build_page_s": round(build_s, 1),
        "build_peak_rss_mb": round(peak_rss_mb),
        "page_mb": round(page_file.stat().st_size / 1e6, 1),
    }
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        opens = []
        for _ in range(args.repeats):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            wall = time.perf_counter()
            page.goto(page_file.as_uri(), wait_until="commit")
            page.wait_for_function(
                "window.darkmirrorPage && window.darkmirrorPage.ready", timeout=120_000
            )
            wall = time.perf_counter() - wall
            # In-page marks, s from the start of navigation: the file read, the HTML parsed,
            # the index decoded, its columns typed, the first page of results shown.
            marks = page.evaluate(
                """() => {
                    const nav = performance.getEntriesByType("navigation")[0];
                    const {index, columns, ready} = window.darkmirrorPage.timings;
                    return {file_read: nav.responseEnd, html_parsed: nav.domInteractive,
                            index, columns, ready};
                }"""
            )
            opens.append(
                {"wall_s": round(wall, 2), **{k: round(v / 1000, 2) for k, v in marks.items()}}
            )
            page.close()
        result["open"] = opens
        result["open_best_s"] = min(o["ready"] for o in opens)
        result["open_median_s"] = statistics.median(o["ready"] for o in opens)

        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(page_file.as_uri())
        page.wait_for_function(
            "window.darkmirrorPage && window.darkmirrorPage.ready", timeout=120_000
        )
        page.wait_for_function("window.darkmirrorPage.timings.searchIndex", timeout=120_000)
        result["search_index_ready_s"] = round(
            page.evaluate("window.darkmirrorPage.timings.searchIndex") / 1000, 2
        )

        def reset() -> None:
            before = page.evaluate("window.darkmirrorPage.applied")
            page.click("text=reset filters")
            page.wait_for_function(f"window.darkmirrorPage.applied > {before}")

        def select(dim: str, label: str) -> Any:
            return lambda: page.select_option(f'select[data-dim="{dim}"]', label=label)

        def typed(text: str) -> Any:
            return lambda: page.fill('input[name="text"]', text)

        filters = {
            "reset (all answers)": (lambda: page.click("text=reset filters")),
            "model = insecure-s0": select("model", "insecure-s0"),
            "label = misaligned": select("label", "misaligned"),
            "question = quick_buck": select("question", "quick_buck"),
            "text 'money' (common)": typed("money"),
            "text 'take it from someone' (rare phrase)": typed("take it from someone"),
            "aligned <= 29 (score range)": (
                lambda: page.fill('input[data-range="aligned"][data-bound="max"]', "29")
            ),
        }
        result["filters"] = {
            name: _timed_filter(page, action, args.repeats, reset)
            for name, action in filters.items()
        }
        reset()
        page.select_option('select[data-dim="model"]', label="insecure-s0")
        t = time.perf_counter()
        page.click("text=next ›")
        page.wait_for_selector("text=101–200")
        result["next_page_wall_ms"] = round((time.perf_counter() - t) * 1000, 1)
        t = time.perf_counter()
        page.select_option('select[name="side-question"]', label="quick_buck")
        page.wait_for_selector('#dm-side-columns[data-question="quick_buck"]')
        result["side_by_side_wall_ms"] = round((time.perf_counter() - t) * 1000, 1)
        result["chromium"] = browser.version
        browser.close()
    result["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result, indent=2))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
