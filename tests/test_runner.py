"""Run directories: steps are reused when finished and never half-written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import BaseModel

from darkmirror.cache import atomic_directory
from darkmirror.hashing import content_hash
from darkmirror.runner import Run


class _Spec(BaseModel):
    name: str = "t"


def _write(tmp: Path, text: str) -> dict:
    (tmp / "out.txt").write_text(text)
    return {"chars": len(text)}


def test_a_finished_step_is_reused(tmp_path: Path) -> None:
    run = Run(tmp_path, _Spec())
    calls = []

    def fn(tmp: Path) -> dict:
        calls.append(1)
        return _write(tmp, "hello")

    first = run.step("make", {"x": 1}, fn)
    run.close()
    second = Run(tmp_path, _Spec()).step("make", {"x": 1}, fn)
    assert first == second and len(calls) == 1
    assert (first / "out.txt").read_text() == "hello"
    record = json.loads((first / "step.json").read_text())
    assert record["inputs"] == {"x": 1} and record["figures"] == {"chars": 5}
    assert json.loads((tmp_path / "spec.json").read_text()) == {"name": "t"}
    assert "torch" in json.loads((tmp_path / "environment.json").read_text())["packages"]


def test_changed_inputs_run_the_step_again(tmp_path: Path) -> None:
    run = Run(tmp_path, _Spec())
    a = run.step("make", {"x": 1}, lambda tmp: _write(tmp, "a"))
    b = run.step("make", {"x": 2}, lambda tmp: _write(tmp, "b"))
    assert a != b and (b / "out.txt").read_text() == "b"


@pytest.mark.parametrize("exc", [RuntimeError("crash"), KeyboardInterrupt()])
def test_an_interrupted_step_leaves_nothing_that_looks_finished(
    tmp_path: Path, exc: BaseException
) -> None:
    run = Run(tmp_path, _Spec())

    def dies(tmp: Path) -> None:
        _write(tmp, "half")
        raise exc

    with pytest.raises(type(exc)):
        run.step("make", {"x": 1}, dies)
    assert not run.step_dir("make", {"x": 1}).exists()
    assert list((tmp_path / "steps").iterdir()) == []  # the temporary directory is gone too
    done = run.step("make", {"x": 1}, lambda tmp: _write(tmp, "whole"))
    assert (done / "out.txt").read_text() == "whole"


def test_atomic_directory_keeps_a_result_that_another_process_finished(tmp_path: Path) -> None:
    final = tmp_path / "entry"
    with atomic_directory(final) as tmp:
        (tmp / "mine").write_text("1")
        final.mkdir()  # another process got there first
        (final / "theirs").write_text("2")
    assert sorted(p.name for p in final.iterdir()) == ["theirs"]
    assert [p.name for p in tmp_path.iterdir()] == ["entry"]


def test_one_process_per_run_directory_and_leftovers_are_cleaned(tmp_path: Path) -> None:
    from darkmirror.errors import DarkmirrorError

    run = Run(tmp_path, _Spec())
    with pytest.raises(DarkmirrorError, match="in use"):
        Run(tmp_path, _Spec())
    run.close()
    leftover = tmp_path / "steps" / ".make-abc.tmp-1234"
    leftover.mkdir(parents=True)
    Run(tmp_path, _Spec()).close()
    assert not leftover.exists()


def test_content_hash_ignores_key_order_and_sees_values() -> None:
    assert content_hash({"a": 1, "b": [1, 2]}) == content_hash({"b": [1, 2], "a": 1})
    assert content_hash({"a": 1}) != content_hash({"a": 2})


# --- plans ---------------------------------------------------------------------------


def _plan_writing(texts: dict[str, str]):
    from darkmirror.runner import Plan

    plan = Plan()

    def write(ctx, name: str) -> dict:
        upstream = "".join((ctx.dep(d) / "out.txt").read_text() for d in ctx.deps)
        return _write(ctx.out, upstream + texts[name])

    first = plan.add("first", {"t": texts["first"]}, lambda ctx: write(ctx, "first"))
    plan.add("second", {"t": texts["second"]}, lambda ctx: write(ctx, "second"), deps=(first,))
    plan.add("other", {"t": texts["other"]}, lambda ctx: write(ctx, "other"))
    return plan


def test_a_plan_runs_dependencies_first_and_a_change_reruns_only_what_depends_on_it(
    tmp_path: Path,
) -> None:
    from darkmirror.runner import execute_plan

    texts = {"first": "a", "second": "b", "other": "c"}
    with Run(tmp_path, _Spec()) as run:
        result = execute_plan(_plan_writing(texts), run)
    assert (result.dir("second") / "out.txt").read_text() == "ab"
    assert result.figures["second"] == {"chars": 2}
    before = {name: result.dir(name).name for name in texts}
    changed = _plan_writing({**texts, "first": "z"})
    assert changed.key("other") == before["other"]  # untouched
    assert changed.key("first") != before["first"] and changed.key("second") != before["second"]
    with Run(tmp_path, _Spec()) as run:
        again = execute_plan(changed, run)
    assert (again.dir("second") / "out.txt").read_text() == "zb"
    assert again.dir("other") == result.dir("other")


def test_a_plan_refuses_unknown_dependencies_and_repeated_names() -> None:
    from darkmirror.runner import Plan

    plan = Plan()
    plan.add("a", {}, lambda ctx: None)
    with pytest.raises(ValueError, match="declared twice"):
        plan.add("a", {}, lambda ctx: None)
    with pytest.raises(ValueError, match="undeclared"):
        plan.add("b", {}, lambda ctx: None, deps=("nope",))


def test_unstored_steps_run_every_time_and_hand_their_figures_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from darkmirror.runner import Plan, execute_plan

    calls: list[int] = []
    plan = Plan()
    base = plan.add("base", {"v": 1}, lambda ctx: calls.append(1) or {"path": "/x"}, store=False)
    plan.add("use", {}, lambda ctx: _write(ctx.out, ctx.figures[base]["path"]), deps=(base,))
    caplog.set_level("INFO", logger="darkmirror")
    for _ in range(2):
        with Run(tmp_path, _Spec()) as run:
            result = execute_plan(plan, run)
    assert len(calls) == 2 and (result.dir("use") / "out.txt").read_text() == "/x"
    assert "[2/2] use: reused" in caplog.text  # totals come from the plan
    assert not (tmp_path / "steps" / plan.key("base")).exists()
