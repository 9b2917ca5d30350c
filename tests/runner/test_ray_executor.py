"""The Ray executor on a local Ray cluster the tests start themselves.

A micro emergent-misalignment run gives the same figures under Ray as in-process, and a
run started on one executor resumes on the other; a worker killed mid-step is retried
with an unchanged result; a step that raises fails the run with its own error and keeps
the others' results; a worker that cannot see the run directory stops the run with a
message that says so.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pytest
from pydantic import BaseModel

from conftest import darkmirror_cli, default_sigint, subprocess_env
from darkmirror.errors import DarkmirrorError
from darkmirror.runner import Plan, Resources, Run, StepContext, execute_plan

ray = pytest.importorskip("ray", reason="the ray extra is not installed")

from darkmirror.runner import ray_executor  # noqa: E402
from darkmirror.runner.ray_executor import RayExecutor  # noqa: E402


class _Spec(BaseModel):
    name: str = "t"


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of two CPUs for this module's in-process tests (its workers can
    import this module, whose step functions the tasks run)."""
    here = Path(__file__).resolve().parent
    path = os.pathsep.join([str(here), str(here.parent), os.environ.get("PYTHONPATH", "")])
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level="WARNING",
        runtime_env={"env_vars": {"PYTHONPATH": path}},
    )
    yield
    ray.shutdown()


def _write(ctx: StepContext, text: str) -> dict:
    upstream = "".join((ctx.dep(d) / "out.txt").read_text() for d in sorted(ctx.deps))
    (ctx.out / "out.txt").write_text(upstream + text)
    return {"text": upstream + text}


def _killed_once(ctx: StepContext, marker: str) -> dict:
    """Kills its own worker process the first time, as a crash or the OOM killer would."""
    if not Path(marker).exists():
        Path(marker).write_text("killed")
        (ctx.out / "half.txt").write_text("half-written")
        os.kill(os.getpid(), signal.SIGKILL)
    return _write(ctx, "k")


def _raises(ctx: StepContext) -> dict:
    raise DarkmirrorError("step b: the dataset has no records")


def _plan(tmp: Path, middle) -> Plan:
    plan = Plan()
    a = plan.add("a", {"t": "a"}, partial(_write, text="a"))
    b = plan.add("b", {"t": "b"}, middle, deps=(a,), resources=Resources(cpus=1, gpus=1))
    plan.add("c", {"t": "c"}, partial(_write, text="c"), deps=(b,))
    plan.add("other", {"t": "o"}, partial(_write, text="o"))
    return plan


def test_a_worker_killed_mid_step_is_retried_and_the_result_is_unchanged(
    tmp_path: Path, cluster: None
) -> None:
    marker = tmp_path / "killed"
    plan = _plan(tmp_path, partial(_killed_once, marker=str(marker)))
    with Run(tmp_path / "ray", _Spec()) as run:
        result = execute_plan(plan, run, executor=RayExecutor())
    assert marker.read_text() == "killed"  # the first attempt really died
    undisturbed = _plan(tmp_path, partial(_write, text="k"))
    with Run(tmp_path / "local", _Spec()) as run:
        expected = execute_plan(undisturbed, run)
    assert (result.dir("c") / "out.txt").read_text() == "akc"
    assert (result.dir("c") / "out.txt").read_text() == (expected.dir("c") / "out.txt").read_text()
    assert not (result.dir("b") / "half.txt").exists()  # the dead attempt left nothing
    # A GPU was asked for; on a cluster without one the step ran on a CPU.
    assert result.figures["b"] == {"text": "ak"}


def test_a_failing_step_fails_the_run_with_its_own_error_and_keeps_the_rest(
    tmp_path: Path, cluster: None
) -> None:
    plan = _plan(tmp_path, _raises)
    with Run(tmp_path / "run", _Spec()) as run, pytest.raises(DarkmirrorError, match="no records"):
        execute_plan(plan, run, executor=RayExecutor())
    steps = tmp_path / "run" / "steps"
    finished = {p.name.rsplit("-", 1)[0] for p in steps.iterdir() if (p / "step.json").is_file()}
    assert finished == {"a", "other"}  # b failed, c never ran, the independent step finished


def test_a_one_cpu_scan_shard_starts_one_semgrep_process(cluster: None) -> None:
    # A scan shard is a one-CPU task (scan/distributed.py); semgrep_jobs = "auto" must not
    # start a process per CPU of the node in every shard.
    from darkmirror.scan.detectors.semgrep import auto_jobs

    one, two = (ray.remote(num_cpus=n)(auto_jobs) for n in (1, 2))
    assert ray.get(one.remote()) == 1
    assert ray.get(two.remote()) == 2


def test_a_worker_that_cannot_see_the_run_directory_stops_the_run(
    tmp_path: Path, cluster: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def blind(paths: list[str], token: str) -> list[str]:  # shipped by value to the node
        return list(paths[:1])

    monkeypatch.setattr(ray_executor, "_probe", blind)
    with (
        Run(tmp_path / "run", _Spec()) as run,
        pytest.raises(DarkmirrorError, match=r"cannot see .*storage every worker sees"),
    ):
        execute_plan(_plan(tmp_path, partial(_write, text="b")), run, executor=RayExecutor())
    assert not list((tmp_path / "run" / "steps").glob("*/step.json"))


def test_the_micro_experiment_gives_the_same_figures_under_ray_and_resumes_across_executors(
    tmp_path: Path, micro_organism, organism_cache: Path
) -> None:
    from test_cli import micro_spec

    spec, env = micro_spec(tmp_path), subprocess_env(organism_cache)
    start = time.perf_counter()
    # -X importtime lists every module the driver imports (its workers run without it).
    command = ["run", str(spec), "--out", str(tmp_path / "ray"), "--executor", "ray"]
    on_ray = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "darkmirror", *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    ray_seconds = time.perf_counter() - start
    assert on_ray.returncode == 0, on_ray.stderr[-3000:]
    # The driver plans, schedules and reports; torch is for the workers that run the steps.
    driver_imports = re.findall(r"^import time:.*\|\s+([\w.]+)$", on_ray.stderr, re.MULTILINE)
    assert "darkmirror.experiments.misalignment.report" in driver_imports
    assert "torch" not in driver_imports and "transformers" not in driver_imports
    local = darkmirror_cli("run", str(spec), "--out", str(tmp_path / "local"), env=env)
    assert local.returncode == 0, local.stderr[-3000:]
    ray_summary = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert ray_summary == json.loads((tmp_path / "local" / "summary.json").read_text())
    assert (tmp_path / "ray" / "rows.jsonl").read_text() == (
        tmp_path / "local" / "rows.jsonl"
    ).read_text()
    # The same step directories: the Ray run resumes locally with nothing to redo.
    again = darkmirror_cli("run", str(spec), "--out", str(tmp_path / "ray"), env=env)
    assert again.returncode == 0 and again.stderr.count(": reused") == 7, again.stderr[-2000:]
    assert ": running" not in again.stderr
    assert ray_seconds > 0


def test_ctrl_c_on_the_driver_keeps_finished_steps_and_the_command_resumes(
    tmp_path: Path, micro_organism, organism_cache: Path
) -> None:
    from test_cli import micro_spec

    spec, out, env = micro_spec(tmp_path), tmp_path / "run", subprocess_env(organism_cache)
    command = [sys.executable, "-m", "darkmirror", "run", str(spec), "--out", str(out)]
    proc = subprocess.Popen(
        [*command, "--executor", "ray"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    deadline = time.time() + 300
    while time.time() < deadline and not list((out / "steps").glob("*/step.json")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "resume" in err and "Traceback" not in err
    finished = {p.parent.name for p in (out / "steps").glob("*/step.json")}
    assert finished
    resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    for name in finished:  # every step finished before Ctrl-C is reused, not redone
        assert f"reused {name}" in resumed.stderr


def test_a_sweep_runs_on_ray_and_resumes_locally_with_nothing_to_redo(
    tmp_path: Path, micro_organism, organism_cache: Path
) -> None:
    from test_cli import micro_spec

    spec, out, env = micro_spec(tmp_path), tmp_path / "sweep", subprocess_env(organism_cache)
    grid = ("--over", "base.organism.seed=0,1", "--out", str(out))
    on_ray = darkmirror_cli("sweep", str(spec), *grid, "--executor", "ray", env=env)
    assert on_ray.returncode == 0, on_ray.stderr[-3000:]
    assert "(2 shared between cells)" in on_ray.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"]["shared"] == 2 and summary["pooled"]["all cells"]["effects"]
    local = darkmirror_cli("sweep", str(spec), *grid, env=env)
    assert local.returncode == 0 and ": running" not in local.stderr, local.stderr[-2000:]
    assert local.stderr.count(": reused") == 12  # every stored step of both cells
    assert json.loads((out / "summary.json").read_text()) == summary
