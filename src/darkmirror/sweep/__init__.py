"""Sweeps: one spec over a grid of values, run as one plan, reported pooled.

:mod:`~darkmirror.sweep.grid` holds the grid (imported by :mod:`darkmirror.spec` for the
``[sweep]`` table, so nothing here imports the experiments at package level);
:mod:`~darkmirror.sweep.run` runs a sweep and :mod:`~darkmirror.sweep.report` writes its
pooled report.
"""

from darkmirror.sweep.grid import (
    Axis,
    Cell,
    SweepSpec,
    axis_from_option,
    cells_of,
    sweep_from_options,
)

__all__ = ["Axis", "Cell", "SweepSpec", "axis_from_option", "cells_of", "sweep_from_options"]
