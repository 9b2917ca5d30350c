"""Experiment specs: TOML files validated by pydantic, with ``key=value`` overrides.

Every spec names its experiment (``experiment = "emergent_misalignment"``); the rest of the
file is that experiment's settings, validated by the spec model the experiment registers
(:data:`darkmirror.experiments.EXPERIMENTS`): the ``experiment`` field is the union's
discriminator. Errors point at the file, line and field
(:func:`darkmirror.config_io.load_toml_model`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from darkmirror.config_io import load_toml_model, read_text
from darkmirror.errors import InputError
from darkmirror.experiments import EXPERIMENTS
from darkmirror.runner import ExecutorSpec
from darkmirror.sweep.grid import SweepSpec

__all__ = ["DEFAULT_SPEC", "RunFile", "builtin_config", "load_run_file", "load_spec"]


def builtin_config(name: str) -> Path:
    """Path of a spec that ships with darkmirror (``configs/<name>.toml``)."""
    return Path(str(resources.files("darkmirror") / "configs" / f"{name}.toml"))


DEFAULT_SPEC = "emergent_misalignment"


@dataclass(frozen=True)
class RunFile:
    """A spec file: the experiment's spec, and how to run it.

    Args:
        spec: The experiment's spec (what ``spec.json`` records; it determines the results).
        executor: The ``[executor]`` table: where the steps run (it changes no result).
        sweep: The ``[sweep]`` table (``darkmirror sweep`` reads it), or None.
    """

    spec: BaseModel
    executor: ExecutorSpec
    sweep: SweepSpec | None


def load_run_file(path: str | Path | None, overrides: Sequence[str] = ()) -> RunFile:
    """Load a spec file with its ``[executor]`` and ``[sweep]`` tables.

    The tables are validated with the spec, so an error in them names its line too.

    Raises:
        InputError: As :func:`load_spec`.
    """
    path = Path(path) if path is not None else builtin_config(DEFAULT_SPEC)
    spec_cls = _spec_class(path)

    class _File(spec_cls):  # type: ignore[valid-type, misc]
        model_config = ConfigDict(extra="forbid", frozen=True)

        executor: ExecutorSpec = ExecutorSpec()
        sweep: SweepSpec | None = None

    loaded = load_toml_model(path, _File, overrides)
    data = loaded.model_dump(mode="json", exclude={"executor", "sweep"})
    return RunFile(spec_cls.model_validate(data), loaded.executor, loaded.sweep)


def load_spec(path: str | Path | None, overrides: Sequence[str] = ()) -> BaseModel:
    """Load and validate a spec; the default experiment's spec when ``path`` is None.

    A spec without ``experiment`` is the default experiment's.

    Raises:
        InputError: An unknown experiment, or a bad value (file, line and field named).
    """
    path = Path(path) if path is not None else builtin_config(DEFAULT_SPEC)
    return load_toml_model(path, _spec_class(path), overrides)


def _spec_class(path: Path) -> type[BaseModel]:
    """The spec model of the experiment a spec file names (the default one without a name)."""
    text = read_text(path)
    try:
        experiment = tomllib.loads(text).get("experiment")
    except tomllib.TOMLDecodeError:
        experiment = None  # load_toml_model reports the syntax error with its line
    if experiment is not None and experiment not in EXPERIMENTS:
        line = next(
            (i for i, s in enumerate(text.splitlines(), 1) if s.strip().startswith("experiment")),
            None,
        )
        raise InputError(
            f"unknown experiment {experiment!r}; expected one of {', '.join(map(repr, EXPERIMENTS))}",
            path=path,
            line=line,
            field="experiment",
        )
    return EXPERIMENTS[experiment or DEFAULT_SPEC].spec
