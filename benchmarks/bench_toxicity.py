"""Throughput of the offline toxicity scorer and of its exact n-gram attribution.

    python benchmarks/bench_toxicity.py --texts 100000 --attribute-texts 20000

Generates forum-style comments of 10-25 words (mostly civil, some insulting, seeded),
then times ``ProfanityCheckScorer.score`` on all of them in one call, ``attribute_ngrams``
text by text, and generic occlusion attribution on a few for comparison. Prints one JSON
object with the machine and its load average, since other jobs share the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time

from darkmirror.score.scorer import occlusion_attribution
from darkmirror.score.toxicity import ProfanityCheckScorer

OPENERS = ["honestly", "well", "look", "ok so", "i think", "to be fair", "lol", "sorry but"]
CIVIL = [
    "thanks for the post it helped me a lot with my garden",
    "the new update works fine on my machine after the restart",
    "i disagree with the second point but the rest is solid",
    "has anyone tried the recipe with less sugar and more lemon",
    "great photo of the harbour at sunset last weekend",
    "the bus was late again so i walked to the station",
    "good question the answer depends on your budget and the season",
]
INSULTING = [
    "you are an idiot and nobody asked",
    "what a stupid post moron",
    "shut up you clown this is garbage",
    "only a dumb loser would write this",
]


def world_comments(n: int, seed: int = 0, insult_share: float = 0.2) -> list[str]:
    """Comments of 10-25 words: an opener, civil clauses, sometimes an insult."""
    rng = random.Random(seed)
    comments = []
    for _ in range(n):
        words = rng.choice(OPENERS).split()
        if rng.random() < insult_share:
            words += rng.choice(INSULTING).split()
        target = rng.randint(10, 25)
        while len(words) < target:
            words += rng.choice(CIVIL).split()
        comments.append(" ".join(words[:target]).capitalize() + rng.choice([".", "!", "?", ""]))
    return comments


def best_of(repeats: int, fn) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=100_000, help="comments scored in one call")
    parser.add_argument("--attribute-texts", type=int, default=20_000)
    parser.add_argument("--occlusion-texts", type=int, default=2_000)
    parser.add_argument("--n", type=int, default=3, help="words per n-gram (the metric's default)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    texts = world_comments(args.texts)
    load_before = os.getloadavg()
    start = time.perf_counter()
    scorer = ProfanityCheckScorer()
    setup_s = time.perf_counter() - start

    score_s, score_runs = best_of(args.repeats, lambda: scorer.score(texts))
    scores = scorer.score(texts)
    some = texts[: args.attribute_texts]
    attribute_s, attribute_runs = best_of(
        args.repeats, lambda: [scorer.attribute_ngrams(t, args.n) for t in some]
    )
    few = texts[: args.occlusion_texts]
    occlusion_s, _ = best_of(1, lambda: [occlusion_attribution(scorer, t, args.n) for t in few])

    print(
        json.dumps(
            {
                "scorer": scorer.name,
                "version": scorer.version,
                "texts": len(texts),
                "mean_words": round(statistics.mean(len(t.split()) for t in texts), 1),
                "share_scoring_over_0.5": round(
                    sum(s.value is not None and s.value > 0.5 for s in scores) / len(scores), 3
                ),
                "setup_s": round(setup_s, 3),
                "score_s_best": round(score_s, 3),
                "score_s_runs": [round(t, 3) for t in score_runs],
                "score_texts_per_s": round(len(texts) / score_s),
                "attribute_ngrams_n": args.n,
                "attribute_texts": len(some),
                "attribute_s_runs": [round(t, 3) for t in attribute_runs],
                "attribute_ngrams_texts_per_s": round(len(some) / attribute_s),
                "occlusion_texts": len(few),
                "occlusion_texts_per_s": round(len(few) / occlusion_s),
                "machine": {
                    "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(),
                    "cpus_usable": len(os.sched_getaffinity(0)),
                    "python": platform.python_version(),
                },
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
