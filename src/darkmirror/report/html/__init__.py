"""``report.html``: a run's report, its plots and a browser over every answer, in one file.

:func:`write_report_page` writes it next to ``report.md``; :func:`build_report_page` gives
the same HTML to whoever serves it, and takes extra :class:`PageSection` s for pages that
add to it (a comparison of runs).
"""

from darkmirror.report.html.markdown import Entities, cell_filters, render_report_markdown
from darkmirror.report.html.page import PageSection, build_report_page, write_report_page
from darkmirror.report.html.samples import (
    BASELINE_GROUPS,
    LABELS,
    NOT_JUDGED,
    answer_label,
    baseline_models,
    pack_rows,
)

__all__ = [
    "BASELINE_GROUPS",
    "LABELS",
    "NOT_JUDGED",
    "Entities",
    "PageSection",
    "answer_label",
    "baseline_models",
    "build_report_page",
    "cell_filters",
    "pack_rows",
    "render_report_markdown",
    "write_report_page",
]
