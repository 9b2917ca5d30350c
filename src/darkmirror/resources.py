"""What a unit of work asks of a scheduler: CPUs, GPUs, memory, GPUs held together.

A plan's steps declare it (:mod:`darkmirror.runner.plan`) and a model reference says what
sampling from it needs (:meth:`darkmirror.models.ref.HFModel.resources`); the Ray executor
turns it into task options and placement groups.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Resources"]


@dataclass(frozen=True)
class Resources:
    """What a step needs to run.

    Args:
        cpus: CPU cores.
        gpus: GPUs (fractions share one).
        memory_gb: Memory, when known.
        gpu_bundles: GPUs that must sit on one node and be held together, for a model
            sharded over them (vLLM's tensor parallelism): under Ray the step runs in a
            placement group of this many one-GPU bundles, which the engine's own workers
            join. 0: no placement group.
    """

    cpus: float = 1.0
    gpus: float = 0.0
    memory_gb: float | None = None
    gpu_bundles: int = 0
