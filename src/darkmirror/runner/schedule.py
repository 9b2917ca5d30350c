"""How long a plan takes on N workers: its total work, its critical path, a list schedule.

A plan's steps form a DAG. With each step's cost (its measured seconds, or an estimate),
the **total work** is the sum of the costs (the time on one worker), the **critical
path** the longest chain of dependent steps (the time on unlimited workers), and their
ratio the most any number of workers can speed the plan up. :func:`list_schedule`
simulates N identical workers that each take the ready step with the longest remaining
path (a standard greedy schedule, within 2x of optimal): what the Ray executor does with
N one-step slots, ignoring its overhead.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from darkmirror.runner.plan import PlannedStep

__all__ = ["Schedule", "critical_path", "list_schedule"]


def _tails(steps: Sequence[PlannedStep], cost: Mapping[str, float]) -> dict[str, float]:
    """Each step's cost plus the longest chain of steps that depend on it."""
    children: dict[str, list[str]] = {p.key: [] for p in steps}
    for p in steps:
        for d in p.dep_keys.values():
            if d in children:
                children[d].append(p.key)
    tail: dict[str, float] = {}
    for p in reversed(steps):  # plan order runs dependencies first
        tail[p.key] = cost[p.key] + max((tail[c] for c in children[p.key]), default=0.0)
    return tail


def critical_path(
    steps: Sequence[PlannedStep], cost: Mapping[str, float]
) -> tuple[float, list[str]]:
    """The longest chain of dependent steps: its length and its step keys, in order.

    Args:
        steps: The plan's steps, dependencies first.
        cost: Seconds of each step, by key.
    """
    tail = _tails(steps, cost)
    by_key = {p.key: p for p in steps}
    children = {p.key: [c.key for c in steps if p.key in c.dep_keys.values()] for p in steps}
    roots = [p.key for p in steps if not any(d in by_key for d in p.dep_keys.values())]
    if not roots:
        return 0.0, []
    chain = [max(roots, key=lambda k: tail[k])]
    while children[chain[-1]]:
        chain.append(max(children[chain[-1]], key=lambda k: tail[k]))
    return tail[chain[0]], chain


@dataclass(frozen=True)
class Schedule:
    """A simulated run on N workers.

    Args:
        workers: Workers.
        makespan: Seconds from the first step's start to the last step's end.
        busy: Share of worker time spent on steps.
    """

    workers: int
    makespan: float
    busy: float


def list_schedule(
    steps: Sequence[PlannedStep], cost: Mapping[str, float], workers: int
) -> Schedule:
    """Simulate ``workers`` identical workers running the plan (see the module docstring)."""
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    tail = _tails(steps, cost)
    deps = {p.key: {d for d in p.dep_keys.values() if d in tail} for p in steps}
    waiting = {k: set(v) for k, v in deps.items()}
    ready = [(-tail[k], k) for k, v in waiting.items() if not v]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []  # (end time, key)
    free, now, done = workers, 0.0, 0
    while done < len(steps):
        while free and ready:
            _, key = heapq.heappop(ready)
            heapq.heappush(running, (now + cost[key], key))
            free -= 1
        now, key = heapq.heappop(running)
        free += 1
        done += 1
        for other, needs in waiting.items():
            if key in needs:
                needs.discard(key)
                if not needs:
                    heapq.heappush(ready, (-tail[other], other))
    total = sum(cost[p.key] for p in steps)
    return Schedule(workers, now, total / (now * workers) if now else 1.0)
