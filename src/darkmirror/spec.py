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
from importlib import resources
from pathlib import Path

from pydantic import BaseModel

from darkmirror.config_io import load_toml_model, read_text
from darkmirror.errors import InputError
from darkmirror.experiments import EXPERIMENTS

__all__ = ["DEFAULT_SPEC", "builtin_config", "load_spec"]


def builtin_config(name: str) -> Path:
    """Path of a spec that ships with darkmirror (``configs/<name>.toml``)."""
    return Path(str(resources.files("darkmirror") / "configs" / f"{name}.toml"))


DEFAULT_SPEC = "emergent_misalignment"


def load_spec(path: str | Path | None, overrides: Sequence[str] = ()) -> BaseModel:
    """Load and validate a spec; the default experiment's spec when ``path`` is None.

    A spec without ``experiment`` is the default experiment's.

    Raises:
        InputError: An unknown experiment, or a bad value (file, line and field named).
    """
    path = Path(path) if path is not None else builtin_config(DEFAULT_SPEC)
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
    return load_toml_model(path, EXPERIMENTS[experiment or DEFAULT_SPEC].spec, overrides)
