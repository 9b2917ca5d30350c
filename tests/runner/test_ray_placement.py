"""GPU placement under the Ray executor, on a local cluster that declares two GPUs.

Ray trusts the GPU count it is given, so a CPU machine can check the placement logic: a
step that shards a model over two GPUs holds a placement group of two one-GPU bundles on
one node, runs in it, and the group is released after; a one-GPU step gets its GPU.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import pytest
from pydantic import BaseModel

from darkmirror.runner import Plan, Resources, Run, StepContext, execute_plan

ray = pytest.importorskip("ray", reason="the ray extra is not installed")

from darkmirror.runner.ray_executor import RayExecutor  # noqa: E402


class _Spec(BaseModel):
    name: str = "t"


@pytest.fixture(scope="module")
def gpu_cluster():
    here = Path(__file__).resolve().parent
    path = os.pathsep.join([str(here), str(here.parent), os.environ.get("PYTHONPATH", "")])
    ray.init(
        num_cpus=2,
        num_gpus=2,
        include_dashboard=False,
        logging_level="WARNING",
        runtime_env={"env_vars": {"PYTHONPATH": path}},
    )
    yield
    ray.shutdown()


def _where(ctx: StepContext, label: str) -> dict:
    group = ray.util.get_current_placement_group()
    return {
        "label": label,
        "bundles": None if group is None else group.bundle_specs,
        "gpus": [str(g) for g in ray.get_gpu_ids()],
    }


def test_a_sharded_step_holds_a_placement_group_and_a_plain_step_its_gpu(
    tmp_path: Path, gpu_cluster: None
) -> None:
    plan = Plan()
    first = plan.add("train", {}, partial(_where, label="train"), resources=Resources(gpus=1))
    plan.add(
        "serve",
        {},
        partial(_where, label="serve"),
        deps=(first,),
        resources=Resources(cpus=1, gpus=2, gpu_bundles=2),
    )
    with Run(tmp_path / "run", _Spec()) as run:
        result = execute_plan(plan, run, executor=RayExecutor())
    train, serve = result.figures["train"], result.figures["serve"]
    assert train["bundles"] is None and len(train["gpus"]) == 1
    assert serve["bundles"] == [{"CPU": 1.0}, {"GPU": 1.0}, {"GPU": 1.0}]
    # The step itself asks for no GPU: the engine's workers take the bundles' GPUs.
    assert serve["gpus"] == []
    assert ray.util.placement_group_table() and all(
        g["state"] == "REMOVED" for g in ray.util.placement_group_table().values()
    )
