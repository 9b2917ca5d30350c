"""``report.html``: a run as one self-contained web page.

The page holds what ``report.md`` holds (tables, plots inlined) and a sample browser over
every answer of ``rows.jsonl``, and it is built from the run directory's files alone, so
``darkmirror report RUN`` rebuilds it and any copy of the file opens offline: its CSS and
JavaScript (``assets/``, shipped in the wheel) are written into it, the answers are a
gzipped blob in it, and it makes no request.

:func:`build_report_page` returns the HTML without writing it, so a server can send the
same page, and takes extra :class:`PageSection` s, so a comparison can add its own.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from string import Template

from darkmirror.report.format import write_text_atomic
from darkmirror.report.html.markdown import (
    IMAGE_TYPES,
    Entities,
    data_uri,
    render_report_markdown,
)
from darkmirror.report.html.samples import SamplePayload, read_payload

__all__ = ["PageSection", "build_report_page", "write_report_page"]

PAGE_FILE = "report.html"


@dataclass(frozen=True)
class PageSection:
    """A section of the page after the report, with an entry in its navigation.

    Args:
        id: The section's HTML id (``compare``); the navigation links to ``#id``.
        title: Its heading and navigation text.
        html: Its body. It goes into the page as it is: whoever builds it escapes any text
            it did not write (:func:`html.escape`, or Markdown rendered without raw HTML).
    """

    id: str
    title: str
    html: str


def _asset(name: str) -> str:
    return resources.files("darkmirror.report.html").joinpath("assets", name).read_text()


def _version() -> str:
    try:
        return metadata.version("darkmirror")
    except metadata.PackageNotFoundError:
        return "unknown"


def _entities(payload: SamplePayload | None) -> Entities:
    if payload is None:
        return Entities()
    dims = payload.data["dims"]

    def present(d: str) -> frozenset[str]:
        return frozenset(v for v in dims[d]["values"] if isinstance(v, str))

    return Entities(model=present("model"), group=present("group"), question=present("question"))


def _other_images(run_dir: Path, shown: frozenset[str]) -> str:
    """The run's plots that ``report.md`` does not show inline (the stress report names its
    plot in plain text), so that the page still has every plot."""
    files = sorted(
        p
        for p in run_dir.iterdir()
        if p.suffix.lower() in IMAGE_TYPES and p.is_file() and p.name not in shown
    )
    if not files:
        return ""
    figures = "".join(
        f'<figure><img class="dm-plot" src="{data_uri(p)}" alt="{html.escape(p.name)}">'
        f"<figcaption>{html.escape(p.name)}</figcaption></figure>"
        for p in files
    )
    return f'<h2>Plots</h2><div class="dm-plots">{figures}</div>'


def build_report_page(run_dir: Path, sections: Sequence[PageSection] = ()) -> str:
    """The HTML of a run's page, from its files alone.

    Args:
        run_dir: A run directory: ``report.md`` (its tables and the plots it references)
            and ``rows.jsonl`` (the answers); either may be missing, and the page says so.
        sections: Sections to add after the sample browser.

    Raises:
        InputError: ``rows.jsonl`` has a malformed line (the message names file, line and
            field).
    """
    rows_file = run_dir / "rows.jsonl"
    payload = read_payload(rows_file) if rows_file.is_file() else None
    report_file = run_dir / "report.md"
    if report_file.is_file():
        report = render_report_markdown(report_file.read_text(), run_dir, _entities(payload))
        report_html = report.html + _other_images(run_dir, report.images)
        title = report.title or run_dir.resolve().name
    else:
        report_html = f"<p>This run has no report.md.</p>{_other_images(run_dir, frozenset())}"
        title = run_dir.resolve().name
    nav = "".join(f'<a href="#{html.escape(s.id)}">{html.escape(s.title)}</a>' for s in sections)
    extra = "".join(
        f'<section id="{html.escape(s.id)}" class="dm-section">'
        f"<h2>{html.escape(s.title)}</h2>{s.html}</section>"
        for s in sections
    )
    meta = {"run": run_dir.resolve().name, "version": _version(), "has_rows": payload is not None}
    index, chunks = ("", []) if payload is None else payload.encode()
    template = Template(_asset("page.html"))
    return template.substitute(
        title=html.escape(title),
        run=html.escape(run_dir.resolve().name),
        version=html.escape(meta["version"]),
        css=_asset("page.css"),
        js=_asset("page.js"),
        report=report_html,
        nav=nav,
        sections=extra,
        # "<" escaped so that no string can close the script element.
        meta=json.dumps(meta).replace("<", "\\u003c"),
        samples=index,
        chunks="".join(
            f'<script type="application/octet-stream" class="dm-chunk">{c}</script>\n'
            for c in chunks
        ),
    )


def write_report_page(run_dir: Path, sections: Sequence[PageSection] = ()) -> Path:
    """Write ``run_dir/report.html`` (see :func:`build_report_page`); returns its path."""
    path = run_dir / PAGE_FILE
    write_text_atomic(path, build_report_page(run_dir, sections))
    return path
