"""Load TOML files into pydantic models, with errors that point at the line to fix.

:func:`load_toml_model` is the one entry point for specs and any other TOML-backed model::

    spec = load_toml_model("configs/em.toml", ExperimentSpec, ["finetune.epochs=2"])

A bad file gives one :class:`~darkmirror.errors.InputError` such as::

    configs/em.toml:14: field 'finetunes[1].method': expected one of 'sft', 'dpo', got 'ppo'

The standard library's ``tomllib`` gives no positions for parsed values, so
:class:`TomlLocator` re-scans the (already valid) text to map key paths to lines.
:func:`describe_validation_error` turns a pydantic error into that one-line explanation; the
dataset and question-set loaders use it too.
"""

from __future__ import annotations

from darkmirror.config_io.loading import load_toml_model, model_from_overrides, read_text
from darkmirror.config_io.locator import TomlLocator
from darkmirror.config_io.overrides import Override, parse_override
from darkmirror.config_io.validation import ValidationProblem, describe_validation_error

__all__ = [
    "Override",
    "TomlLocator",
    "ValidationProblem",
    "describe_validation_error",
    "load_toml_model",
    "model_from_overrides",
    "parse_override",
    "read_text",
]
