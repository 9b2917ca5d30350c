"""Plots (PNG, matplotlib's non-interactive backend)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def bar_chart_with_intervals(
    path: Path,
    labels: Sequence[str],
    estimates: Sequence[Mapping[str, Any]],
    *,
    title: str,
    ylabel: str,
    percent: bool = False,
) -> None:
    """One bar per label with its 95% interval as an error bar; missing values are blank."""
    scale = 100.0 if percent else 1.0
    values, err_lo, err_hi = [], [], []
    for e in estimates:
        v = e.get("value")
        v = math.nan if v is None else v * scale
        lo = e.get("lo")
        hi = e.get("hi")
        values.append(v)
        err_lo.append(0.0 if lo is None or math.isnan(v) else max(0.0, v - lo * scale))
        err_hi.append(0.0 if hi is None or math.isnan(v) else max(0.0, hi * scale - v))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(labels) + 1.5), 3.6), dpi=120)
    ax.bar(range(len(labels)), values, yerr=[err_lo, err_hi], capsize=4, color="#4c72b0")
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.grid(axis="y", alpha=0.3)
    save_figure(fig, path)


def save_figure(fig, path: Path) -> None:
    """Save a figure as PNG atomically, and close it."""
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
