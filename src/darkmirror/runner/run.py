"""A run directory and its steps.

A run executes a spec as a sequence of steps (build a dataset, fine-tune a model, evaluate
it, ...). Each step's output is a directory named by the step and the hash of everything
that determines it, written under a temporary name and renamed into place when complete
(see :func:`darkmirror.cache.atomic_directory`). Rerunning a spec, after Ctrl-C, a kill or a
crash, skips every finished step and redoes only the rest; a changed input changes the hash
and so reruns just what depends on it.

Layout of a run directory::

    spec.json          the resolved spec (defaults filled in, overrides applied)
    environment.json   package versions, Python, platform, threads
    datasets.json      SHA-256 and record count of every dataset used
    steps/<name>-<hash>/   one directory per finished step, with step.json
    rows.jsonl         one row per sampled answer (written by the experiment)
    summary.json       every figure of the report, recomputable from rows.jsonl
    report.md          tables; *.png plots
"""

from __future__ import annotations

import fcntl
import json
import logging
import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from darkmirror.cache import clear_stale_temporaries
from darkmirror.errors import DarkmirrorError
from darkmirror.hashing import content_hash
from darkmirror.runner.step_store import finished_figures, write_step

log = logging.getLogger(__name__)

SpecT = TypeVar("SpecT", bound=BaseModel)

_PACKAGES = (
    "darkmirror",
    "torch",
    "transformers",
    "trl",
    "peft",
    "accelerate",
    "datasets",
    "tokenizers",
    "safetensors",
    "pydantic",
    "numpy",
    "bandit",
    "alt-profanity-check",
    "scikit-learn",
    "matplotlib",
)


def environment(executor: str = "local") -> dict[str, Any]:
    """Python, platform, package versions and the executor; with the local executor, which
    runs the steps in this process, also torch's threads and whether it sees a GPU. Another
    executor runs them in worker processes (each with the threads of the CPUs its task
    holds), so this process does not import torch to describe itself."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "executor": executor,
        "packages": versions,
    }
    if executor == "local":
        import torch

        env["torch_threads"] = torch.get_num_threads()
        env["cuda"] = torch.cuda.is_available()
    return env


class Run:
    """A run directory.

    Args:
        root: The directory; created if missing, reused (resumed) if present.
        spec: The resolved spec, written to ``spec.json``.
        spec_file: Where the spec goes (a sweep's directory records ``sweep.json``).
        executor: The name of the executor that runs its steps (``environment.json``).
    """

    def __init__(
        self,
        root: Path,
        spec: BaseModel,
        *,
        spec_file: str = "spec.json",
        executor: str = "local",
    ) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        # One process per run directory: two would race on the same steps.
        self._lock = open(root / ".lock", "w")  # noqa: SIM115 (held for the run's lifetime)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise DarkmirrorError(
                f"run directory '{root}' is in use by another darkmirror process"
            ) from None
        # Holding the lock, any temporary step directory is a leftover of a killed run.
        clear_stale_temporaries(root / "steps")
        # The environment first: with the local executor it imports torch (seconds), which
        # then happens before the run directory says the run has started.
        env = environment(executor)
        self.write_json(spec_file, spec.model_dump(mode="json"))
        self.write_json("environment.json", env)
        self._steps_total = 0
        self._steps_done = 0

    def write_json(self, name: str, value: Any) -> None:
        tmp = self.root / f".{name}.tmp"
        tmp.write_text(json.dumps(value, indent=2, default=str) + "\n")
        tmp.replace(self.root / name)

    def close(self) -> None:
        """Release the run directory (also released when the process exits)."""
        self._lock.close()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def record_datasets(self, hashes: Mapping[str, Mapping[str, Any]]) -> None:
        self.write_json("datasets.json", hashes)

    def plan(self, n_steps: int) -> None:
        """Announce how many steps follow, for progress lines."""
        self._steps_total, self._steps_done = n_steps, 0

    def announce(self, name: str, detail: str) -> None:
        """Count a step whose output lives outside the run directory (the organism cache)."""
        log.info("%s %s: %s", self.count(), name, detail)

    def step_dir(self, name: str, inputs: Mapping[str, Any]) -> Path:
        return self.root / "steps" / f"{name}-{content_hash(inputs)}"

    def step(
        self, name: str, inputs: Mapping[str, Any], fn: Callable[[Path], Mapping[str, Any] | None]
    ) -> Path:
        """Run ``fn(tmp_dir)`` unless an identical step already finished; return its directory.

        Args:
            name: Readable step name (``"finetune-insecure-s0"``).
            inputs: Everything that determines the output; hashed into the directory name.
            fn: Writes the step's files into the directory it is given and may return
                figures, stored with the inputs in ``step.json``.
        """
        final = self.step_dir(name, inputs)
        counter = self.count()
        if finished_figures(final) is not None:
            log.info("%s %s: reused %s", counter, name, final.name)
            return final
        log.info("%s %s: running", counter, name)
        _, seconds = write_step(final, name, inputs, fn)
        log.info("%s %s: done in %.1f s", counter, name, seconds)
        return final

    def count(self) -> str:
        """Count one more step and return its progress counter (``[3/17]``)."""
        self._steps_done += 1
        return f"[{self._steps_done}/{self._steps_total}]" if self._steps_total else "[-]"


def load_finished_run(
    out: Path, spec_cls: type[SpecT], extra: Sequence[str] = ()
) -> tuple[SpecT, dict[str, Path]]:
    """The spec of a finished run directory, and its files, for rebuilding its report.

    Args:
        out: The run directory.
        spec_cls: The experiment's spec model (``spec.json`` is validated as it).
        extra: Other files the report needs (``context.json``), checked to exist.

    Returns:
        The spec, and the path of ``spec.json``, ``rows.jsonl`` and every file named.

    Raises:
        DarkmirrorError: If a file is missing (the run never finished).
    """
    files = {name: out / name for name in ("spec.json", "rows.jsonl", *extra)}
    missing = [name for name, path in files.items() if not path.is_file()]
    if missing:
        raise DarkmirrorError(
            f"'{out}' is not a finished run directory (missing {', '.join(missing)})"
        )
    return spec_cls.model_validate_json(files["spec.json"].read_text()), files
