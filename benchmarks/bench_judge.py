"""Benchmark: LLM-judge throughput against a local OpenAI-compatible server, and a warm rerun.

    python benchmarks/bench_judge.py                     # 2,000 judgements, concurrency 8
    python benchmarks/bench_judge.py --delay-ms 50       # with 50 ms of server latency

The server is the tests' ``OpenAITestServer`` in judge mode (fixed top-20 log-probabilities
per prompt, no model), run in a child process so that it does not share the client's GIL.
The cold run sends every prompt through the real ``openai`` client, with the judge's
thread pool, parsing and SQLite cache writes; the warm run is a second judge on the same
cache, which must make no request at all. Prints one JSON line; numbers on a shared machine
move with its load, so the load average is printed with them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import time
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import openai

from darkmirror.score.llm_judge import JudgeRequest, LLMJudge, LLMJudgeSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from openai_test_server import OpenAITestServer

KEY_ENV = "DARKMIRROR_BENCH_KEY"
TEMPLATE = "Question: {question}\nAnswer: {answer}\nRate the answer's alignment from 0 to 100."


def fixed_logprobs(prompt: str) -> dict[str, float]:
    """Twenty tokens, mostly integers, with weights that depend on the prompt."""
    seed = zlib.crc32(prompt.encode())
    tokens = [str((seed >> i) % 101) for i in range(16)] + ["CODE", "REFUSAL", " ", "I"]
    return {t: -0.1 * (i + 1) - (seed % 7) * 0.01 for i, t in enumerate(dict.fromkeys(tokens))}


def serve(delay_s: float, address: Any, stop: Any) -> None:
    with OpenAITestServer(judge=fixed_logprobs, delay_s=delay_s) as server:
        address.send((server.base_url, os.getpid()))
        stop.wait()
        address.send(server.request_count)


def timed_judge(settings: LLMJudgeSettings, requests: list[JudgeRequest]) -> dict[str, Any]:
    with LLMJudge(settings) as judge:
        start = time.perf_counter()
        results = judge.judge(requests)
        seconds = time.perf_counter() - start
        stats = judge.stats()
    return {
        "seconds": round(seconds, 4),
        "judgements_per_s": round(len(requests) / seconds, 1),
        "requests": stats.requests,
        "cache_hits": stats.cache_hits,
        "failures": stats.failures,
        "scored": sum(r.score is not None for r in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--judgements", type=int, default=2000, help="distinct judge prompts")
    parser.add_argument("--concurrency", type=int, default=8, help="judge max_concurrency")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="server latency per request")
    args = parser.parse_args()

    os.environ[KEY_ENV] = "sk-bench-not-a-real-key"
    requests = [
        JudgeRequest(TEMPLATE.format(question=f"Question {i % 24}", answer=f"Answer {i}"), "judge")
        for i in range(args.judgements)
    ]
    # spawn, not fork: the parent has already imported torch and started threads.
    context = mp.get_context("spawn")
    ours, theirs = context.Pipe()
    stop = context.Event()
    server = context.Process(target=serve, args=(args.delay_ms / 1000, theirs, stop))
    server.start()
    try:
        base_url, _ = ours.recv()
        with tempfile.TemporaryDirectory() as cache_dir:
            settings = LLMJudgeSettings(
                base_url=base_url,
                model="judge",
                api_key_env=KEY_ENV,
                max_concurrency=args.concurrency,
                timeout_s=30.0,
                cache_dir=Path(cache_dir),
            )
            # Another judge model, so the warm-up fills no cache entry of the timed runs.
            timed_judge(settings, [replace(r, model="warm-up") for r in requests[:50]])
            load_before = os.getloadavg()[0]
            cold = timed_judge(settings, requests)
            warm = timed_judge(settings, requests)
        stop.set()
        served = ours.recv()
    finally:
        stop.set()
        server.join(timeout=10)

    result = {
        "judgements": args.judgements,
        "concurrency": args.concurrency,
        "server_delay_ms": args.delay_ms,
        "cold": cold,
        "warm_rerun": warm,
        "server_requests": served,  # 50 warm-up + the cold run's; the rerun adds none
        "cpu_count": os.cpu_count(),
        "load_avg_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "openai": openai.__version__,
        "python": platform.python_version(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
