"""Experiment specs: TOML files validated by pydantic, with ``key=value`` overrides.

Every spec names its experiment (``experiment = "emergent_misalignment"``); the rest of the
file is that experiment's settings. Errors point at the file, line and field
(:func:`darkmirror.config_io.load_toml_model`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

from darkmirror.config_io import load_toml_model, read_text
from darkmirror.errors import InputError
from darkmirror.models.organism import OrganismRecipe


class BaseModelSpec(BaseModel):
    """The model every fine-tune starts from.

    Args:
        kind: ``"organism"`` (built by darkmirror, cached) or ``"hf"`` (any Hugging Face
            causal LM).
        id: For ``"hf"``: a hub id or a local directory.
        adapter: For ``"hf"``: an optional PEFT adapter applied on top.
        revision: For ``"hf"`` hub ids: branch, tag or commit.
        organism: For ``"organism"``: the recipe (defaults give the standard organism).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["organism", "hf"] = "organism"
    id: str | None = None
    adapter: str | None = None
    revision: str | None = None
    organism: OrganismRecipe = OrganismRecipe()

    @model_validator(mode="after")
    def _check(self) -> BaseModelSpec:
        if self.kind == "hf" and not self.id:
            raise ValueError("kind 'hf' needs id (a hub id or a local directory)")
        if self.kind == "organism" and (self.id or self.adapter):
            raise ValueError("kind 'organism' takes no id or adapter; use kind = 'hf' for those")
        return self


def builtin_config(name: str) -> Path:
    """Path of a spec that ships with darkmirror (``configs/<name>.toml``)."""
    return Path(str(resources.files("darkmirror") / "configs" / f"{name}.toml"))


DEFAULT_SPEC = "emergent_misalignment"


def load_spec(path: str | Path | None, overrides: Sequence[str] = ()) -> BaseModel:
    """Load and validate a spec; the default experiment's spec when ``path`` is None."""
    from darkmirror.experiments import SPEC_MODELS

    path = Path(path) if path is not None else builtin_config(DEFAULT_SPEC)
    text = read_text(path)
    try:
        experiment = tomllib.loads(text).get("experiment")
    except tomllib.TOMLDecodeError:
        experiment = None  # load_toml_model reports the syntax error with its line
    if experiment is not None and experiment not in SPEC_MODELS:
        line = next(
            (i for i, s in enumerate(text.splitlines(), 1) if s.strip().startswith("experiment")),
            None,
        )
        raise InputError(
            f"unknown experiment {experiment!r}; expected one of {', '.join(map(repr, SPEC_MODELS))}",
            path=path,
            line=line,
            field="experiment",
        )
    model_cls = SPEC_MODELS.get(experiment, SPEC_MODELS[DEFAULT_SPEC])
    return load_toml_model(path, model_cls, overrides)
