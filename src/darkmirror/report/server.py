"""``darkmirror view``: run pages served from this machine, read-only.

The server sends the pages :func:`~darkmirror.report.html.build_report_page` generates and
nothing else: no file of a run is ever sent as it is, so no path a client writes can reach
a file (a URL names a run by its position in the command line and a sweep's cell by a
name the directory listing holds). GET and HEAD only; it writes nothing anywhere.

It is the standard library's ``http.server``, not a web framework, on purpose: it serves
three kinds of generated page to one local user, which needs a dozen lines of routing and
no templates, sessions or forms; a framework would add a dependency, and its own surface,
for features nobody uses here. ``ThreadingHTTPServer`` so that building the page of a large
run (seconds for 200,000 answers) does not hold up the index or another run.
"""

from __future__ import annotations

import html
import ipaddress
import logging
import re
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from darkmirror.errors import DarkmirrorError, InputError
from darkmirror.report.html import build_report_page

__all__ = ["PageCache", "ServedRun", "ViewServer", "is_loopback", "make_server", "served_runs"]

log = logging.getLogger("darkmirror")

PAGE = "report.html"
# The files a page is built from: a change to any of them rebuilds it.
_SOURCES = ("report.md", "rows.jsonl")
_IMAGES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp")
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
# Pages are inline-only (styles, script, data: images): the browser may fetch nothing.
_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) only accepts connections from this machine."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServedRun:
    """A run (or sweep) directory, and its URL slug (``/runs/<slug>/``)."""

    slug: str
    path: Path

    @property
    def title(self) -> str:
        """The first heading of its ``report.md``, or its directory name."""
        report = self.path / "report.md"
        if report.is_file():
            with report.open(encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.startswith("# "):
                        return line[2:].strip()
        return self.path.resolve().name

    def cells(self) -> list[str]:
        """The names of a sweep's cells that are runs (``cells/<name>/``); none for a run."""
        root = self.path / "cells"
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if p.is_dir() and _is_run(p))


def _is_run(path: Path) -> bool:
    return any((path / name).is_file() for name in _SOURCES)


def served_runs(paths: Sequence[Path]) -> list[ServedRun]:
    """The runs to serve, each with a slug made of its directory name (letters, digits,
    ``.``, ``_``, ``-``), numbered when two share one.

    Raises:
        InputError: A path that is not a directory holding ``report.md`` or ``rows.jsonl``.
    """
    out: list[ServedRun] = []
    taken: set[str] = set()
    for path in paths:
        if not path.is_dir():
            raise InputError("no such run directory", path=path)
        if not _is_run(path):
            raise InputError(
                "not a darkmirror run or sweep directory: it has no report.md or rows.jsonl",
                path=path,
            )
        base = re.sub(r"[^A-Za-z0-9._-]+", "-", path.resolve().name).strip(".-") or "run"
        slug, n = base, 1
        while slug in taken:
            n += 1
            slug = f"{base}-{n}"
        taken.add(slug)
        out.append(ServedRun(slug, path))
    return out


class PageCache:
    """Built pages by directory, rebuilt when a file the page is built from changes
    (``report.md``, ``rows.jsonl``, the plots: by modification time and size)."""

    def __init__(self) -> None:
        self._pages: dict[Path, tuple[tuple[Any, ...], bytes]] = {}
        self._locks: dict[Path, threading.Lock] = {}
        self._guard = threading.Lock()

    @staticmethod
    def _stamp(run_dir: Path) -> tuple[Any, ...]:
        files = [run_dir / n for n in _SOURCES]
        files += sorted(p for p in run_dir.iterdir() if p.suffix.lower() in _IMAGES)
        return tuple(
            (p.name, st.st_mtime_ns, st.st_size) if (st := _stat(p)) else (p.name,) for p in files
        )

    def page(self, run_dir: Path) -> bytes:
        """The page of ``run_dir``, built at most once per change (one build at a time per
        directory, so two requests for a new page do not build it twice)."""
        key = run_dir.resolve()
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            stamp = self._stamp(key)
            cached = self._pages.get(key)
            if cached and cached[0] == stamp:
                return cached[1]
            body = build_report_page(run_dir).encode("utf-8")
            self._pages[key] = (stamp, body)
            return body


def _stat(path: Path) -> Any:
    try:
        return path.stat()
    except OSError:
        return None


def _segments(target: str) -> list[str] | None:
    """The request path's segments, decoded; None for a path no page can have (``..``,
    ``.``, an empty segment inside, an encoded ``/`` or ``\\``, a NUL)."""
    path = urlsplit(target).path
    if not path.startswith("/"):
        return None
    parts = [unquote(p) for p in path[1:].split("/")]
    for i, p in enumerate(parts):
        if p in (".", "..") or any(c in p for c in "/\\\x00") or (not p and i < len(parts) - 1):
            return None
    return parts


@dataclass(frozen=True)
class _Page:
    run_dir: Path


@dataclass(frozen=True)
class _Redirect:
    location: str


def _route(runs: dict[str, ServedRun], parts: list[str]) -> _Page | _Redirect | str | None:
    """What a path names: a page, a redirect, the index (``"index"``), or None (404).

    ``/runs/<slug>/`` is a run's page; ``/runs/<slug>/cells/<cell>/`` a sweep cell's (the
    sweep's page links its cells relatively); ``report.html`` after either is the same
    page, and ``report.md`` redirects to it (a sweep links a cell's report.md when the cell
    has no page yet).
    """
    if parts == [""]:
        return "index"
    if len(parts) < 2 or parts[0] != "runs" or parts[1] not in runs:
        return None
    run = runs[parts[1]]
    base = f"/runs/{quote(run.slug)}/"
    rest = parts[2:]
    if len(rest) >= 2 and rest[0] == "cells":
        if rest[1] not in run.cells():
            return None
        base += f"cells/{quote(rest[1])}/"
        directory, rest = run.path / "cells" / rest[1], rest[2:]
    else:
        directory = run.path
    if rest in ([""], [PAGE]):
        return _Page(directory)
    if rest == []:
        return _Redirect(base)
    if rest == ["report.md"]:
        return _Redirect(base + PAGE)
    return None


def _index_html(runs: Sequence[ServedRun]) -> bytes:
    items = []
    for r in runs:
        cells = r.cells()
        what = f"sweep of {len(cells)} cells" if cells else "run"
        items.append(
            f'<li><a href="/runs/{html.escape(quote(r.slug))}/">{html.escape(r.title)}</a> '
            f'<span class="what">{html.escape(what)}</span><br>'
            f"<code>{html.escape(str(r.path))}</code></li>"
        )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>darkmirror runs</title><style>body{font:15px/1.5 system-ui,sans-serif;"
        "margin:2rem auto;max-width:60rem;padding:0 1rem}li{margin:.6rem 0}"
        ".what{color:#666;font-size:.9em}code{color:#444}</style></head><body>"
        f"<h1>darkmirror runs</h1><ol>{''.join(items)}</ol></body></html>"
    ).encode()


def _message_html(title: str, text: str) -> bytes:
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title></head><body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>"
    ).encode()


class _Handler(BaseHTTPRequestHandler):
    server: ViewServer
    server_version = "darkmirror-view"

    def do_GET(self) -> None:
        self._respond(head=False)

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def __getattr__(self, name: str) -> Any:
        # http.server looks up do_<METHOD>; every method but GET and HEAD (POST, PUT,
        # DELETE, PROPFIND, ...) is refused with 405, not 501: the server is read-only.
        if name.startswith("do_"):
            return self._refuse
        raise AttributeError(name)

    def _refuse(self) -> None:
        self._send(
            HTTPStatus.METHOD_NOT_ALLOWED,
            _message_html("405 Method Not Allowed", "darkmirror view is read-only: GET and HEAD."),
            extra={"Allow": "GET, HEAD"},
        )

    def _host_allowed(self) -> bool:
        """Behind a loopback address, only requests that name it: a page on another site
        that rebinds its own name to 127.0.0.1 sends its own name as Host, and is refused."""
        if not self.server.loopback:
            return True
        host = self.headers.get("Host")
        if host is None:
            return True
        name = urlsplit(f"//{host}").hostname or ""
        return name in _LOOPBACK_NAMES or is_loopback(name)

    def _respond(self, head: bool) -> None:
        if not self._host_allowed():
            self._send(
                HTTPStatus.FORBIDDEN,
                _message_html("403 Forbidden", "Host not served: open the URL the server printed."),
                head=head,
            )
            return
        parts = _segments(self.path)
        if parts is None:
            self._send(
                HTTPStatus.BAD_REQUEST,
                _message_html("400 Bad Request", "No page has such a path."),
                head=head,
            )
            return
        target = _route(self.server.runs, parts)
        if target is None:
            self._send(
                HTTPStatus.NOT_FOUND,
                _message_html("404 Not Found", "No such page: start from the index, /."),
                head=head,
            )
        elif isinstance(target, _Redirect):
            self._send(HTTPStatus.FOUND, b"", head=head, extra={"Location": target.location})
        elif target == "index":
            listed = list(self.server.runs.values())
            if len(listed) == 1:
                self._send(
                    HTTPStatus.FOUND,
                    b"",
                    head=head,
                    extra={"Location": f"/runs/{quote(listed[0].slug)}/"},
                )
            else:
                self._send(HTTPStatus.OK, _index_html(listed), head=head)
        else:
            assert isinstance(target, _Page)
            self._send_page(target.run_dir, head)

    def _send_page(self, run_dir: Path, head: bool) -> None:
        try:
            body = self.server.cache.page(run_dir)
        except DarkmirrorError as exc:
            # A malformed rows.jsonl: the message names the file, line and field.
            log.warning("%s", exc)
            body, status = _message_html("Cannot build the page", str(exc)), 500
        except Exception:
            log.exception("building the page of %s failed", run_dir)
            body, status = _message_html("Cannot build the page", "See the server's log."), 500
        else:
            status = HTTPStatus.OK
        self._send(status, body, head=head)

    def _send(
        self,
        status: int,
        body: bytes,
        *,
        head: bool = False,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        headers = {
            "Content-Type": "text/html; charset=utf-8",
            "Content-Length": str(len(body)),
            # A rebuilt page must show on reload.
            "Cache-Control": "no-cache",
            "Content-Security-Policy": _POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            **(extra or {}),
        }
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("view: " + format, *args)

    def log_error(self, format: str, *args: Any) -> None:
        log.info("view: " + format, *args)


class ViewServer(ThreadingHTTPServer):
    """The read-only page server (see the module docstring).

    Args:
        address: ``(host, port)``; port 0 takes any free port.
        runs: The runs it serves.
    """

    daemon_threads = True

    def __init__(self, address: tuple[str, int], runs: Sequence[ServedRun]) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.runs = {r.slug: r for r in runs}
        self.cache = PageCache()
        self.loopback = is_loopback(address[0])
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        """The address to open: the index, or the only run's page."""
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else str(host)
        return f"http://{shown}:{port}/"


def make_server(paths: Sequence[Path], host: str = "127.0.0.1", port: int = 8765) -> ViewServer:
    """A server of the pages of ``paths`` on ``host:port`` (not started: call
    ``serve_forever``).

    Raises:
        InputError: A path that is not a run or sweep directory.
        DarkmirrorError: The address cannot be bound (port in use, unknown host).
    """
    runs = served_runs(paths)
    try:
        return ViewServer((host, port), runs)
    except OSError as exc:
        hint = " (in use? --port 0 takes any free port)" if port else ""
        raise DarkmirrorError(f"cannot listen on {host}:{port}{hint}: {exc.strerror}") from None
