"""The Ray executor: each step a Ray task with the resources it declares.

``darkmirror run SPEC --executor ray [--address ADDR]`` (``pip install 'darkmirror[ray]'``).
Every step whose output is not already on disk becomes one task, submitted with its
dependencies' results as arguments, so Ray runs independent steps in parallel and each
step after the ones it reads. A task writes its step directory exactly as the local
executor does (:func:`~darkmirror.runner.step_store.write_step`), so a run started on Ray
resumes locally and the other way round.

Storage: the run directory and darkmirror's cache (``DARKMIRROR_CACHE``) must be on storage
every worker sees (one machine, or a shared filesystem such as NFS). Before any step runs,
a probe task on every node reads a file the driver wrote in both; a node that cannot see
them stops the run with a message that names it.

GPUs: a step asks for what it declares (a fine-tune or a local model's sampling, one GPU;
a vLLM model sharded over N GPUs, a placement group of N GPU bundles on one node, which
vLLM's Ray workers join); in a cluster without GPUs those steps run on CPUs.

Faults:

* a worker that dies in the middle of a step (killed, out of memory, a lost node) is
  retried by Ray up to ``max_retries`` times; the step's temporary directory is discarded,
  so the result is the one an undisturbed run gives;
* a step that raises is not retried: the run fails with that step's own error once the
  steps already running have finished, and every finished step stays on disk;
* Ctrl-C on the driver cancels the tasks and leaves every finished step in place; the same
  command resumes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from darkmirror.cache import cache_root
from darkmirror.errors import DarkmirrorError
from darkmirror.runner.local import step_context
from darkmirror.runner.plan import PlannedStep, Resources, StepContext
from darkmirror.runner.results import StepResults
from darkmirror.runner.run import Run
from darkmirror.runner.step_store import finished_figures, write_step

__all__ = ["RayExecutor", "StepOutcome", "run_planned_step"]

log = logging.getLogger(__name__)

# Settings every worker needs to find what the driver finds; secrets are not among them
# (a worker reads its API keys from its own environment).
_FORWARDED_ENV = ("DARKMIRROR_CACHE", "HF_HUB_OFFLINE", "HF_HOME", "TRANSFORMERS_OFFLINE")
_PROBE_FILE = ".darkmirror-storage-probe"

StepOutcome = tuple[str, str | None, dict[str, Any], float, str]
"""What a step task returns: (key, its directory or None, figures, seconds, host)."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise DarkmirrorError("the ray executor needs Ray: pip install 'darkmirror[ray]'") from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[Any]:
    """Ray, connected: to ``address`` (``"auto"``, ``"ray://host:10001"``), or to a local
    cluster started here when None; shut down at the end only if started here."""
    ray = _import_ray()
    if ray.is_initialized():
        yield ray
        return
    options: dict[str, Any] = {}
    if address is not None:
        # Workers of a cluster this process starts inherit its environment; those of an
        # existing cluster get the settings they need through the runtime environment
        # (which costs a setup per worker, so only where it is needed).
        env = {k: os.environ[k] for k in _FORWARDED_ENV if k in os.environ}
        env["DARKMIRROR_CACHE"] = str(cache_root())
        options["runtime_env"] = {"env_vars": env}
    ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, **options)
    try:
        yield ray
    finally:
        ray.shutdown()


def check_shared_storage(ray: Any, paths: Sequence[Path]) -> None:
    """Raise unless every live node of the cluster sees ``paths`` (a probe file each).

    Raises:
        DarkmirrorError: Naming a node and the paths it cannot see.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token = uuid.uuid4().hex
    for path in paths:
        path.mkdir(parents=True, exist_ok=True)
        (path / _PROBE_FILE).write_text(token)
    try:
        probe = ray.remote(num_cpus=0)(_probe)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        refs = {
            n["NodeManagerAddress"]: probe.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
            ).remote([str(p) for p in paths], token)
            for n in nodes
        }
        blind = {node: missing for node, ref in refs.items() if (missing := ray.get(ref))}
    finally:
        for path in paths:
            (path / _PROBE_FILE).unlink(missing_ok=True)
    if blind:
        node, missing = next(iter(blind.items()))
        raise DarkmirrorError(
            f"a Ray worker on {node} cannot see {', '.join(missing)}: the run directory "
            "and darkmirror's cache (DARKMIRROR_CACHE) must be on storage every worker "
            "sees (one machine, or a shared filesystem such as NFS)"
        )


def run_planned_step(
    planned: PlannedStep,
    root: str,
    progress: bool,
    threads: int,
    *dependencies: StepOutcome,
) -> StepOutcome:
    """Run one step in this process (a Ray worker) and return its outcome.

    Args:
        planned: The step.
        root: The run directory (on storage the driver sees too).
        progress: Show progress bars.
        threads: Torch threads: the CPUs the task holds, so parallel tasks do not fight
            over cores.
        *dependencies: The outcomes of the steps it depends on.
    """
    import torch

    torch.set_num_threads(max(1, threads))
    results = StepResults()
    for key, directory, figures, _, _ in dependencies:
        results.figures[key] = figures
        if directory is not None:
            results.dirs[key] = Path(directory)
    ctx = step_context(planned, results, Path(root), progress)
    host = platform.node()
    step = planned.step
    if not step.store:
        start = time.perf_counter()
        figures = dict(step.fn(ctx) or {})
        return planned.key, None, figures, time.perf_counter() - start, host
    final = Path(root) / "steps" / planned.key
    done = finished_figures(final)
    if done is not None:  # finished meanwhile (a retried task, another driver)
        return planned.key, str(final), done, 0.0, host
    figures, seconds = write_step(
        final,
        step.name,
        planned.hashed_inputs,
        lambda tmp: step.fn(StepContext(tmp, ctx.deps, ctx.figures, ctx.progress)),
    )
    return planned.key, str(final), figures, seconds, host


def _probe(paths: Sequence[str], token: str) -> list[str]:
    """The paths whose probe file this node cannot read (with the token)."""
    missing = []
    for path in paths:
        probe = Path(path) / _PROBE_FILE
        try:
            if probe.read_text() != token:
                missing.append(path)
        except OSError:
            missing.append(path)
    return missing


class RayExecutor:
    """Runs steps as Ray tasks (see the module docstring).

    Args:
        address: The cluster to join; None starts a local cluster for the run (and stops
            it after).
        max_retries: Retries of a step whose worker died.
    """

    name = "ray"

    def __init__(self, address: str | None = None, max_retries: int = 3) -> None:
        self.address = address
        self.max_retries = max_retries

    def execute(
        self, steps: Sequence[PlannedStep], run: Run, *, progress: bool = False
    ) -> StepResults:
        """Run every step that has not finished before; returns every step's outputs."""
        with ray_session(self.address) as ray:
            check_shared_storage(ray, [run.root, cache_root()])
            return self._execute(ray, steps, run, progress)

    def options(self, resources: Resources, cluster: Mapping[str, float]) -> dict[str, Any]:
        """Ray options for a step: what it declares, within what the cluster has (a step
        that would use a GPU runs on a CPU in a cluster without one)."""
        cpus = min(resources.cpus, cluster["max_node_cpus"])
        options: dict[str, Any] = {
            "num_cpus": cpus,
            "num_gpus": resources.gpus if cluster["gpus"] else 0,
            "max_retries": self.max_retries,
            "retry_exceptions": False,
        }
        if resources.memory_gb:
            options["memory"] = int(resources.memory_gb * 2**30)
        return options

    def _execute(
        self, ray: Any, steps: Sequence[PlannedStep], run: Run, progress: bool
    ) -> StepResults:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        cluster = {
            "max_node_cpus": max(n["Resources"].get("CPU", 1.0) for n in nodes),
            "gpus": ray.cluster_resources().get("GPU", 0.0),
        }
        run.plan(len(steps))
        state = _Schedule(ray, run, str(run.root), progress, cluster, self)
        for planned in steps:
            state.offer(planned)
        log.info("ray: %d step(s) to run on %d node(s)", len(state.pending), len(nodes))
        failed = state.wait()
        if failed:
            raise failed
        return state.results


class _Schedule:
    """The driver's side of a Ray run: what is submitted, waiting and finished.

    A step is submitted as soon as the steps it reads are submitted (Ray starts it when
    their results exist); a step that holds a placement group is submitted only once
    those steps have finished, so its GPUs are not reserved while it could not run.
    """

    def __init__(
        self,
        ray: Any,
        run: Run,
        root: str,
        progress: bool,
        cluster: Mapping[str, float],
        executor: RayExecutor,
    ) -> None:
        self.ray, self.run, self.root, self.progress = ray, run, root, progress
        self.cluster, self.executor = cluster, executor
        self.task = ray.remote(run_planned_step)
        self.results = StepResults()
        self.refs: dict[str, Any] = {}
        self.pending: dict[Any, PlannedStep] = {}
        self.groups: dict[Any, Any] = {}  # task ref -> its placement group
        self.deferred: list[PlannedStep] = []
        self.finished: set[str] = set()

    def offer(self, planned: PlannedStep) -> None:
        """Take a step: reuse it, submit it, or defer it until it can be submitted."""
        final = Path(self.root) / "steps" / planned.key
        done = finished_figures(final) if planned.step.store else None
        if done is not None:
            log.info("%s %s: reused %s", self.run.count(), planned.step.name, planned.key)
            self.results.dirs[planned.key], self.results.figures[planned.key] = final, done
            self.refs[planned.key] = self.ray.put((planned.key, str(final), done, 0.0, ""))
            self.finished.add(planned.key)
            return
        deps = set(planned.dep_keys.values())
        placed = planned.step.resources.gpu_bundles > 0 and self.cluster["gpus"] > 0
        if not deps <= set(self.refs) or (placed and not deps <= self.finished):
            self.deferred.append(planned)
            return
        options = self.executor.options(planned.step.resources, self.cluster)
        group = None
        if placed:
            group = _placement_group(self.ray, planned.step.resources)
            options = {**options, "num_gpus": 0, "scheduling_strategy": group[1]}
        ref = self.task.options(name=planned.step.name, **options).remote(
            planned,
            self.root,
            self.progress,
            int(options["num_cpus"]),
            *(self.refs[k] for k in planned.dep_keys.values()),
        )
        self.refs[planned.key] = ref
        self.pending[ref] = planned
        if group is not None:
            self.groups[ref] = group[0]

    def _release(self) -> None:
        """Submit the deferred steps that can now be submitted, in plan order."""
        waiting, self.deferred = self.deferred, []
        for planned in waiting:
            self.offer(planned)

    def wait(self) -> BaseException | None:
        """Collect the tasks as they finish; returns the first step's own error, if any.

        Steps that were already running go on after a failure, so their results are kept;
        steps that depend on a failed one fail with it and are not reported twice.
        """
        ray, run = self.ray, self.run
        errors: dict[str, BaseException] = {}
        failed_keys: set[str] = set()
        try:
            while self.pending:
                ready, _ = ray.wait(list(self.pending), num_returns=1)
                for ref in ready:
                    planned = self.pending.pop(ref)
                    group = self.groups.pop(ref, None)
                    if group is not None:
                        ray.util.remove_placement_group(group)
                    try:
                        key, directory, figures, seconds, host = ray.get(ref)
                    except ray.exceptions.RayError as exc:
                        failed_keys.add(planned.key)
                        if not failed_keys & set(planned.dep_keys.values()):
                            errors[planned.key] = _cause(exc)
                            log.info("%s %s: failed", run.count(), planned.step.name)
                        continue
                    self.finished.add(key)
                    self.results.figures[key] = figures
                    if directory is not None:
                        self.results.dirs[key] = Path(directory)
                    if planned.step.store:
                        log.info(
                            "%s %s: done in %.1f s on %s",
                            run.count(),
                            planned.step.name,
                            seconds,
                            host,
                        )
                    else:
                        run.announce(planned.step.name, str(figures.get("detail", "")))
                if not errors:
                    self._release()
        except BaseException:
            # Ctrl-C: stop the tasks; finished steps are on disk and the command resumes.
            for ref in self.pending:
                ray.cancel(ref, force=True)
            raise
        if not errors and self.deferred:  # a bug, not a user error: never silently skip
            raise RuntimeError(f"steps never submitted: {[p.key for p in self.deferred]}")
        return next(iter(errors.values()), None)


def _placement_group(ray: Any, resources: Resources) -> tuple[Any, Any]:
    """A placement group of one CPU bundle for the step and ``gpu_bundles`` one-GPU
    bundles on the same node, and the scheduling strategy that runs the step in its first
    bundle with every task or actor the step starts kept inside the group."""
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    bundles = [{"CPU": resources.cpus}] + [{"GPU": 1.0}] * resources.gpu_bundles
    group = ray.util.placement_group(bundles, strategy="STRICT_PACK")
    strategy = PlacementGroupSchedulingStrategy(
        group, placement_group_bundle_index=0, placement_group_capture_child_tasks=True
    )
    return group, strategy


def _cause(exc: Any) -> BaseException:
    """The step's own exception inside Ray's wrapper (its message is what the user needs)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc
