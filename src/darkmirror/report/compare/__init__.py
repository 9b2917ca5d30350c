"""``darkmirror compare``: two runs' shared figures side by side, each difference with its
interval and p-value.

:func:`compare_runs` reads two run directories and compares every figure both measure
(:mod:`~darkmirror.report.compare.figures`), or raises :class:`NotComparable` saying what
differs; :func:`write_comparison` writes ``compare.md``, ``compare.json`` and
``compare.html`` (run B's page with a section "Compared with A").
"""

from darkmirror.report.compare.comparison import (
    ComparedRun,
    Comparison,
    NotComparable,
    compare_runs,
    read_run,
)
from darkmirror.report.compare.figures import FigureDifference, FigureSpec, SideFigure, Unit
from darkmirror.report.compare.render import (
    ComparisonFiles,
    comparison_markdown,
    comparison_section,
    write_comparison,
)

__all__ = [
    "ComparedRun",
    "Comparison",
    "ComparisonFiles",
    "FigureDifference",
    "FigureSpec",
    "NotComparable",
    "SideFigure",
    "Unit",
    "compare_runs",
    "comparison_markdown",
    "comparison_section",
    "read_run",
    "write_comparison",
]
