"""``report.md`` as HTML: plots embedded, and every table cell a link to its samples.

The page must open from disk with no network, so each plot the report references is
inlined as a ``data:`` URI and an image that is not a file of the run is shown as its alt
text (a remote ``src`` would be a request). Raw HTML in the Markdown is escaped, not
passed through.

Table cells link to the answers behind them by one rule, the same for every experiment
(misalignment, amplification, subliminal, stress, persona), because it reads only the
tables' text and the values present in ``rows.jsonl`` (see :func:`cell_filters`).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.token import Token

__all__ = ["Entities", "MarkdownPage", "cell_filters", "render_report_markdown"]

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".svg": "image/svg+xml",
}
"""Image files of a run that the page inlines, by suffix."""

LABEL_WORDS = ("misaligned", "aligned", "incoherent", "unscored")
"""The labels a column header (or a table's heading) can name; see :func:`cell_filters`."""

_NOTE = re.compile(r"\s*\([^()]*\)\s*$")


@dataclass(frozen=True)
class Entities:
    """The values of ``rows.jsonl`` a table cell can name, by the filter each one sets.

    Args:
        model: Model names (``insecure-s0``).
        group: Groups (``insecure``, ``baseline``).
        question: Question ids.
    """

    model: frozenset[str] = frozenset()
    group: frozenset[str] = frozenset()
    question: frozenset[str] = frozenset()

    def named(self, text: str) -> tuple[str, str] | None:
        """The ``(filter, value)`` a cell's text names, or None.

        A model wins over a group, and a group over a question id, when the same text is
        several (a model ``base`` of group ``base`` selects the same answers either way).
        A trailing note in parentheses is ignored: ``secure (control)`` names ``secure``.
        """
        for candidate in dict.fromkeys((text, _NOTE.sub("", text))):
            for dimension in ("model", "group", "question"):
                if candidate and candidate in getattr(self, dimension):
                    return dimension, candidate
        return None


@dataclass(frozen=True)
class MarkdownPage:
    """``report.md`` rendered for the page.

    Args:
        html: The body HTML.
        images: The run's image files the Markdown references (names relative to the run).
        title: The first level-1 heading, if any.
    """

    html: str
    images: frozenset[str] = field(default_factory=frozenset)
    title: str | None = None


def _label_in(text: str) -> str | None:
    words = set(re.findall(r"[a-z]+", text.lower()))
    found = [label for label in LABEL_WORDS if label in words]
    return found[0] if len(found) == 1 else None


def cell_filters(
    header: Sequence[str], rows: Sequence[Sequence[str]], heading: str, entities: Entities
) -> tuple[list[dict[str, str]], list[list[dict[str, str]]]]:
    """The sample filter behind each cell of one table (an empty dict: no link).

    The rule:

    1. A cell whose text is a model name, a group or a question id of the rows
       (:meth:`Entities.named`) names that entity, and links to exactly it: ``insecure-s0``
       sets ``model=insecure-s0``; a question's id sets ``question``.
    2. Any other cell of a row links to the entities its row names, plus the one its
       column header names (the per-question table: row ``get_rich``, column ``insecure``
       sets ``question=get_rich, group=insecure``). A dimension named twice with different
       values (two models in one row) is left out, as ambiguous.
    3. Such a cell also sets ``label`` when its column header names exactly one label
       (``misaligned [95%]`` sets ``label=misaligned``; ``scored / incoherent / unscored``
       names three and sets none) or, when the header is an entity, when the table's
       heading names one (``Misaligned rate per question``). So a model's misaligned-rate
       cell shows its misaligned answers, and the counts per label beside them.
    4. A header cell that names an entity links to it too; a cell with no entity in its
       row or column links nowhere.

    Args:
        header: The header cells' text.
        rows: The body cells' text, row by row.
        heading: The nearest heading above the table ("" when none).
        entities: What the rows hold.

    Returns:
        The header cells' filters and the body cells' filters.
    """
    column_entity = [entities.named(h) for h in header]
    header_filters = [dict([e]) if e else {} for e in column_entity]
    body: list[list[dict[str, str]]] = []
    for cells in rows:
        named = [entities.named(c) for c in cells]
        row_key: dict[str, str] = {}
        ambiguous: set[str] = set()
        for entity in named:
            if entity is None:
                continue
            dimension, value = entity
            if row_key.get(dimension, value) != value:
                ambiguous.add(dimension)
            row_key[dimension] = value
        out = []
        for i, entity in enumerate(named):
            if entity is not None:
                out.append(dict([entity]))
                continue
            f = {k: v for k, v in row_key.items() if k not in ambiguous}
            col = column_entity[i] if i < len(column_entity) else None
            if col is not None:
                dimension, value = col
                if f.get(dimension, value) != value:
                    f.pop(dimension)
                else:
                    f[dimension] = value
            if f:
                head = header[i] if i < len(header) else ""
                label = _label_in(heading) if col is not None else _label_in(head)
                if label:
                    f["label"] = label
            out.append(f)
        body.append(out)
    return header_filters, body


def _plain_text(inline: Token) -> str:
    return "".join(
        c.content for c in inline.children or () if c.type in ("text", "code_inline")
    ).strip()


def _link_cell(inline: Token, filters: Mapping[str, str]) -> None:
    """Wrap the cell's content in a link that sets ``filters`` in the sample browser."""
    if not filters or not inline.children:
        return
    link = Token("link_open", "a", 1)
    link.attrs = {
        "href": "#samples",
        "class": "dm-filter-link",
        "data-filter": json.dumps(filters, sort_keys=True),
        "title": "show these answers: "
        + ", ".join(f"{k} = {v}" for k, v in sorted(filters.items())),
    }
    inline.children = [link, *inline.children, Token("link_close", "a", -1)]


def _link_tables(tokens: list[Token], entities: Entities) -> None:
    heading = ""
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.type == "heading_open":
            heading = tokens[i + 1].content
        if t.type != "table_open":
            i += 1
            continue
        table: list[list[Token]] = []
        in_header: list[bool] = []
        header_part = False
        while tokens[i].type != "table_close":
            tok = tokens[i]
            if tok.type in ("thead_open", "thead_close"):
                header_part = tok.type == "thead_open"
            elif tok.type == "tr_open":
                table.append([])
                in_header.append(header_part)
            elif tok.type == "inline" and table:
                table[-1].append(tok)
            i += 1
        header = next((r for r, h in zip(table, in_header, strict=True) if h), [])
        body = [r for r, h in zip(table, in_header, strict=True) if not h]
        head_f, body_f = cell_filters(
            [_plain_text(c) for c in header],
            [[_plain_text(c) for c in r] for r in body],
            heading,
            entities,
        )
        for cell, f in zip(header, head_f, strict=True):
            _link_cell(cell, f)
        for row, fs in zip(body, body_f, strict=True):
            for cell, f in zip(row, fs, strict=True):
                _link_cell(cell, f)


def _image_file(run_dir: Path, src: str) -> Path | None:
    """The run's image file ``src`` points to; None for anything outside the run directory
    (another path, a URL) or of another type."""
    if not src or ":" in src or src.startswith(("/", "\\")):
        return None
    path = (run_dir / src).resolve()
    root = run_dir.resolve()
    if root not in path.parents or path.suffix.lower() not in IMAGE_TYPES or not path.is_file():
        return None
    return path


def data_uri(path: Path) -> str:
    """The file as a ``data:`` URI, so the page holds the image itself."""
    kind = IMAGE_TYPES[path.suffix.lower()]
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _embed_images_and_links(tokens: list[Token], run_dir: Path) -> set[str]:
    used: set[str] = set()
    for t in tokens:
        for c in t.children or ():
            if c.type == "image":
                src = str(c.attrs.get("src", ""))
                path = _image_file(run_dir, src)
                if path is None:
                    # No remote or missing image: the page makes no request.
                    c.type, c.tag, c.attrs = "text", "", {}
                    c.content = f"[image not in the run: {c.content or src}]"
                    c.children = None
                    continue
                c.attrs["src"] = data_uri(path)
                c.attrs["class"] = "dm-plot"
                used.add(path.relative_to(run_dir.resolve()).as_posix())
            elif c.type == "link_open":
                # A sweep links its cells' report.md: point at their page when it exists.
                href = str(c.attrs.get("href", ""))
                if href.endswith("report.md") and ":" not in href:
                    sibling = run_dir / (href[: -len(".md")] + ".html")
                    if sibling.is_file():
                        c.attrs["href"] = href[: -len(".md")] + ".html"
    return used


def render_report_markdown(text: str, run_dir: Path, entities: Entities) -> MarkdownPage:
    """Render ``report.md``'s text: tables linked to samples, plots inlined.

    Args:
        text: The Markdown.
        run_dir: The run directory its image paths are relative to.
        entities: The models, groups and question ids of the run's rows.
    """
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    tokens = md.parse(text)
    title = next(
        (
            tokens[i + 1].content
            for i, t in enumerate(tokens)
            if t.type == "heading_open" and t.tag == "h1"
        ),
        None,
    )
    _link_tables(tokens, entities)
    images = _embed_images_and_links(tokens, run_dir)
    for t in tokens:
        if t.type == "table_open":
            t.attrs["class"] = "dm-table"
    return MarkdownPage(md.renderer.render(tokens, md.options, {}), frozenset(images), title)
