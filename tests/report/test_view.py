"""``darkmirror view``: the server started as a user starts it, and driven over HTTP.

``python -m darkmirror view RUN ... --port 0`` runs in a subprocess; the tests read the URL
it prints, fetch pages with urllib and http.client (which sends a path exactly as written,
``..`` included) and with the system Chromium, and check that it listens on 127.0.0.1 only,
serves the pages ``build_report_page`` builds and nothing else, refuses every method but
GET and HEAD, never writes into a run, rebuilds a page when the run's rows change, and
stops cleanly on Ctrl-C. The runs are written by hand (no model is trained).
"""

from __future__ import annotations

import http.client
import json
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from synthetic_run import write_synthetic_run
from test_page import browser, expected_counts  # noqa: F401  (browser: a fixture)

from conftest import darkmirror_cli, default_sigint, subprocess_env
from darkmirror.data.answers import read_rows
from darkmirror.report.html import build_report_page
from darkmirror.report.server import is_loopback

URL = re.compile(r"at (http://127\.0\.0\.1:(\d+)/) ")


@dataclass
class Served:
    proc: subprocess.Popen
    url: str
    port: int
    runs: dict[str, Path]  # slug -> directory

    def get(self, path: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
        """A request sent as written (no normalisation of ``..``), without following
        redirects."""
        return self.request("GET", path, **headers)

    def request(
        self, method: str, path: str, body: bytes | None = None, **headers: str
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()


def _start(*args: str, env: dict[str, str]) -> tuple[subprocess.Popen, str, int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "darkmirror", "view", *args],
        env=env,
        preexec_fn=default_sigint,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    line = ""
    while time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            line = proc.stdout.readline()  # type: ignore[union-attr]
            break
    match = URL.search(line)
    if not match:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"no URL printed: {line!r}; stderr: {err[-2000:]}")
    return proc, match.group(1), int(match.group(2))


def _stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, err


def _wait_ready(page: Any) -> None:
    """Wait for the page's answers to load. (The page's policy forbids eval, so
    ``wait_for_function`` cannot run in it: wait on the attribute the page sets, and poll.)"""
    page.locator('html[data-ready="1"]').wait_for(state="attached", timeout=30_000)


def _wait_idle(page: Any) -> None:
    deadline = time.monotonic() + 30
    while page.evaluate("window.darkmirrorPage.busy"):
        assert time.monotonic() < deadline, "the page never finished filtering"
        time.sleep(0.05)


def _snapshot(*dirs: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p): (p.stat().st_mtime_ns, p.stat().st_size)
        for d in dirs
        for p in sorted(d.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two runs (the second titled with markup) and a sweep of one cell with no page yet."""
    tmp = tmp_path_factory.mktemp("view")
    first = write_synthetic_run(tmp / "first-run", 420)
    second = write_synthetic_run(tmp / "second run", 280, seed=1)
    report = second / "report.md"
    report.write_text(report.read_text().replace("# synthetic-em", "# <b>bold</b> & co", 1))
    sweep = tmp / "sweep"
    write_synthetic_run(sweep / "cells" / "seed-0", 140, seed=2)
    (sweep / "report.md").write_text(
        "# organisms: sweep of emergent_misalignment\n\n| cell | report |\n|---|---|\n"
        "| seed-0 | [report](cells/seed-0/report.md) |\n"
    )
    return {"first-run": first, "second-run": second, "sweep": sweep}


@pytest.fixture(scope="module")
def served(runs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    env = subprocess_env(tmp_path_factory.mktemp("cache"))
    proc, url, port = _start(*(str(p) for p in runs.values()), "--port", "0", env=env)
    yield Served(proc, url, port, runs)
    if proc.poll() is None:
        _stop(proc)


def test_it_listens_on_loopback_and_serves_each_run_s_page(served: Served) -> None:
    assert served.url == f"http://127.0.0.1:{served.port}/"
    listening = [
        c.laddr
        for c in psutil.Process(served.proc.pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    assert [(a.ip, a.port) for a in listening] == [("127.0.0.1", served.port)]
    with urllib.request.urlopen(served.url, timeout=30) as response:
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        index = response.read().decode()
    for slug in served.runs:
        assert f'href="/runs/{slug}/"' in index
    # A title from report.md is shown as text, never as markup.
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in index and "<b>bold" not in index
    assert "sweep of 1 cells" in index
    for slug, run in served.runs.items():
        with urllib.request.urlopen(f"{served.url}runs/{slug}/", timeout=60) as response:
            assert response.read() == build_report_page(run).encode()
        status, headers, body = served.request("HEAD", f"/runs/{slug}/report.html")
        assert status == 200 and body == b""
        assert int(headers["Content-Length"]) == len(build_report_page(run).encode())
        assert "default-src 'none'" in headers["Content-Security-Policy"]


def test_it_refuses_every_method_but_get_and_head(served: Served) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "PROPFIND", "FOO"):
        status, headers, _ = served.request(method, "/runs/first-run/", body=b"x=1")
        assert (status, headers.get("Allow")) == (405, "GET, HEAD"), method
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(
            urllib.request.Request(served.url, data=b"{}", method="POST"), timeout=30
        )
    assert refused.value.code == 405


def test_it_serves_generated_pages_only_and_no_path_leaves_them(served: Served) -> None:
    secret = served.runs["first-run"].parent / "secret.txt"
    secret.write_text("top secret")
    answer = read_rows(served.runs["first-run"] / "rows.jsonl")[0].answer
    bad_request = [
        "/runs/first-run/../secret.txt",
        "/runs/first-run/%2e%2e/secret.txt",
        "/runs/first-run/..%2fsecret.txt",
        "/runs/first-run/cells/..%2f..%2fsecret.txt/report.html",
        "/runs/sweep/cells/../../first-run/rows.jsonl",
        "/runs/first-run/%2e%2e%5csecret.txt",
        "/runs//first-run/",
    ]
    not_found = [
        "/secret.txt",
        "/runs/first-run/rows.jsonl",
        "/runs/first-run/spec.json",
        "/runs/first-run/misaligned_rate.png",
        "/runs/first-run/report.md/x",
        "/runs/nope/",
        "/runs/sweep/cells/nope/",
        "/runs/sweep/cells/seed-0/rows.jsonl",
        "/etc/passwd",
        "/favicon.ico",
    ]
    for path in bad_request + not_found:
        status, _, body = served.get(path)
        assert status == (400 if path in bad_request else 404), path
        assert b"top secret" not in body and answer.encode() not in body, path
    # A page on another site that rebinds its name to 127.0.0.1 sends that name.
    assert served.get("/runs/first-run/", Host="attacker.example:80")[0] == 403
    assert served.get("/runs/first-run/", Host=f"localhost:{served.port}")[0] == 200


def test_a_sweep_s_cells_are_served_through_its_links(served: Served) -> None:
    cell = served.runs["sweep"] / "cells" / "seed-0"
    status, headers, _ = served.get("/runs/sweep/cells/seed-0/report.md")
    assert (status, headers["Location"]) == (302, "/runs/sweep/cells/seed-0/report.html")
    # The sweep's page links the cell's report.md (it has no page yet): follow it.
    with urllib.request.urlopen(f"{served.url}runs/sweep/", timeout=60) as response:
        page = response.read().decode()
    assert 'href="cells/seed-0/report.md"' in page
    with urllib.request.urlopen(f"{served.url}runs/sweep/cells/seed-0/report.md") as response:
        assert response.url.endswith("/runs/sweep/cells/seed-0/report.html")
        assert response.read() == build_report_page(cell).encode()
    assert not (cell / "report.html").exists()  # served, never written


def test_a_page_is_rebuilt_when_the_rows_change(served: Served) -> None:
    run = served.runs["second-run"]
    url = f"{served.url}runs/second-run/"
    with urllib.request.urlopen(url, timeout=60) as response:
        before = response.read()
    lines = (run / "rows.jsonl").read_text().splitlines()
    extra = json.loads(lines[0])
    extra["answer"] = "A new answer, appended after the page was first served."
    (run / "rows.jsonl").write_text("\n".join([*lines, json.dumps(extra)]) + "\n")
    with urllib.request.urlopen(url, timeout=60) as response:
        after = response.read()
    assert after != before and after == build_report_page(run).encode()
    # A malformed line: an error page that names the file and line, as text.
    (run / "rows.jsonl").write_text("\n".join([*lines, '{"schema": "<b>x</b>"}']) + "\n")
    status, _, body = served.get("/runs/second-run/")
    assert status == 500
    assert f"rows.jsonl:{len(lines) + 1}" in body.decode() and "<b>x" not in body.decode()
    (run / "rows.jsonl").write_text("\n".join(lines) + "\n")


def test_the_served_pages_work_in_chromium_and_touch_nothing(
    served: Served,
    browser: Any,  # noqa: F811  (the fixture imported from test_page)
) -> None:
    before = _snapshot(*served.runs.values())
    page = browser.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(served.url)
    page.click('a[href="/runs/first-run/"]')
    _wait_ready(page)
    rows = read_rows(served.runs["first-run"] / "rows.jsonl")
    page.select_option('select[data-dim="group"]', label="insecure")
    _wait_idle(page)
    shown = int(page.get_attribute("#dm-count", "data-n"))  # type: ignore[arg-type]
    assert shown == expected_counts(rows, {"group": "insecure"})[0] > 0
    page.goto(f"{served.url}runs/sweep/")
    page.click('a[href="cells/seed-0/report.md"]')
    _wait_ready(page)
    assert page.url.endswith("/runs/sweep/cells/seed-0/report.html")
    assert all(u.startswith(served.url) for u in requests), requests
    assert errors == []
    page.close()
    assert _snapshot(*served.runs.values()) == before  # read-only


def test_ctrl_c_stops_it_cleanly(runs: dict[str, Path], tmp_path: Path) -> None:
    proc, url, _ = _start(str(runs["first-run"]), "--port", "0", env=subprocess_env(tmp_path))
    # One run: the index sends the browser to its page.
    with urllib.request.urlopen(url, timeout=60) as response:
        assert response.url == f"{url}runs/first-run/"
    code, err = _stop(proc)
    assert code == 0 and "stopped" in err and "Traceback" not in err


def test_bad_runs_busy_ports_and_public_hosts_are_said(
    runs: dict[str, Path], tmp_path: Path
) -> None:
    env = subprocess_env(tmp_path)
    missing = darkmirror_cli("view", str(tmp_path / "nope"), env=env)
    assert missing.returncode == 2 and "nope: no such run directory" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = darkmirror_cli("view", str(tmp_path / "empty"), env=env)
    assert empty.returncode == 2 and "not a darkmirror run or sweep directory" in empty.stderr
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = darkmirror_cli("view", str(runs["first-run"]), "--port", str(port), env=env)
    assert taken.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port} (in use? --port 0 takes any free port)" in (
        taken.stderr
    )
    # A documentation address no machine has: the warning comes before the bind fails.
    public = darkmirror_cli("view", str(runs["first-run"]), "--host", "192.0.2.1", env=env)
    assert public.returncode == 2
    assert public.stderr.startswith("warning: listening on 192.0.2.1, not a loopback address")
    assert "cannot listen on 192.0.2.1:8765" in public.stderr
    assert [is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "localhost")] == [True] * 4
    assert [is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.5", "example.com")] == [False] * 4
