"""Critical path and list schedule of a plan, on a DAG worked out by hand."""

from __future__ import annotations

import pytest

from darkmirror.runner import Plan
from darkmirror.runner.schedule import critical_path, list_schedule


def _plan() -> tuple[Plan, dict[str, float]]:
    #  a(1) -> b(4) -> d(1)
    #  a(1) -> c(2) -> d
    #  e(3), independent
    plan = Plan()
    for name, deps in (("a", ()), ("b", ("a",)), ("c", ("a",)), ("d", ("b", "c")), ("e", ())):
        plan.add(name, {}, lambda ctx: None, deps=deps)
    seconds = {"a": 1.0, "b": 4.0, "c": 2.0, "d": 1.0, "e": 3.0}
    return plan, {plan.key(n): s for n, s in seconds.items()}


def test_critical_path_is_the_longest_chain() -> None:
    plan, cost = _plan()
    length, chain = critical_path(plan.planned(), cost)
    assert length == 6.0 and chain == [plan.key(n) for n in ("a", "b", "d")]


@pytest.mark.parametrize(("workers", "makespan"), [(1, 11.0), (2, 6.0), (8, 6.0)])
def test_list_schedule(workers: int, makespan: float) -> None:
    plan, cost = _plan()
    schedule = list_schedule(plan.planned(), cost, workers)
    # One worker does all the work; two already reach the critical path (a, b, d on one,
    # e then c on the other).
    assert schedule.makespan == makespan
    assert schedule.busy == pytest.approx(11.0 / (makespan * workers))
