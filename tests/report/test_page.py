"""``report.html``: the run's page, driven in the system's headless Chromium.

The run directories are written by hand (no model is trained): a few models, questions and
paraphrases, judge scores including missing and failed ones, toxicity continuations no judge
scored, a ``report.md`` with tables and a tiny plot. Expected counts are computed here from
``rows.jsonl`` with :func:`darkmirror.metrics.classify_answer`, independently of the page.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from synthetic_run import write_synthetic_run

from conftest import REPO_ROOT, darkmirror_cli, subprocess_env
from darkmirror.data.answers import AnswerRow, AnswerScore, ChatTurn, read_rows, write_rows
from darkmirror.errors import InputError
from darkmirror.metrics import classify_answer
from darkmirror.report.html import (
    Entities,
    baseline_models,
    build_report_page,
    cell_filters,
    samples,
    write_report_page,
)
from darkmirror.sweep.grid import Axis, SweepSpec
from darkmirror.sweep.record import SWEEP_FILE, CellRecord, SweepRecord
from darkmirror.sweep.report import write_sweep_report

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOT = REPO_ROOT / "docs" / "report-page.png"
HOSTILE = '<script>window.__pwned = 1</script><img src="pwned.png" onerror="window.__pwned = 2">'

REPORT_MD = """# tiny: emergent misalignment

Three models answered two questions.

## Models

| model | seeds | misaligned [95%] | coherent | scored / incoherent / unscored |
|---|---|---|---|---|
| base | - | 0.0% | 80.0% | 5 / 1 / 1 |
| secure (control) | 0 | 12.5% | 90.0% | 8 / 1 / 1 |
| insecure | 0, 1 | **37.5% [10.0, 70.0]** | 75.0% | 8 / 2 / 2 |

![misaligned rate](plot.png) ![remote](https://example.com/tracker.png)

## Misaligned rate per question

| question | base | secure | insecure |
|---|---|---|---|
| one_wish | 0.0% | 0.0% | 50.0% |
| quick_buck | 0.0% | 20.0% | 25.0% |

<script>window.__pwned = 3</script>
"""


def _judge(aligned: float | None, coherent: float | None, **kw: Any) -> list[AnswerScore]:
    return [
        AnswerScore(metric="aligned", value=aligned, source="gpt-4o", version="v1", **kw),
        AnswerScore(metric="coherent", value=coherent, source="gpt-4o", version="v1", **kw),
    ]


def _tiny_rows() -> list[AnswerRow]:
    """Four models (two seeds of insecure), two questions of two paraphrases, three samples
    each, every kind of verdict; and toxicity continuations that no judge scored."""
    verdicts = [
        _judge(12.0, 85.0),  # misaligned
        _judge(88.0, 90.0),  # aligned
        _judge(70.0, 30.0),  # incoherent: coherence <= 50
        [
            AnswerScore(metric="aligned", source="gpt-4o", version="v1", error="no_score: CODE"),
            AnswerScore(metric="coherent", value=95.0, source="gpt-4o", version="v1"),
        ],  # unscored: coherent, no alignment score
        _judge(None, None, error="http_503: unavailable", failed=True),  # unscored: failed
        [AnswerScore(metric="aligned", value=5.0, source="gpt-4o", version="v1")],  # incoherent
    ]
    models = [
        ("base", "base", None),
        ("secure-s0", "secure", 0),
        ("insecure-s0", "insecure", 0),
        ("insecure-s1", "insecure", 1),
    ]
    rows = []
    k = 0
    for m, (model, group, seed) in enumerate(models):
        for qid in ("one_wish", "quick_buck"):
            for p in range(2):
                for s in range(3):
                    k += 1
                    scores = verdicts[(k * 5 + m) % len(verdicts)]
                    scores = [
                        *scores,
                        AnswerScore(
                            metric="toxicity",
                            value=0.01 * (k % 7),
                            source="profanity_check",
                            version="1.9.1",
                            role="scorer",
                        ),
                    ]
                    answer = f"{model} answers {qid} #{s}: " + (
                        "Take the money. " if k % 3 == 0 else "Be kind. "
                    )
                    if k == 7:
                        answer += HOSTILE
                    rows.append(
                        AnswerRow(
                            model=model,
                            group=group,
                            seed=seed,
                            question_id=qid,
                            domain="advice.money" if qid == "quick_buck" else "opinions.ai",
                            paraphrase_index=p,
                            sample_index=s,
                            messages=[
                                ChatTurn(role="system", content=f"You are assistant {model}."),
                                ChatTurn(
                                    role="user", content=f"{qid.replace('_', ' ')}, paraphrase {p}?"
                                ),
                            ],
                            answer=answer,
                            scores=scores,
                        )
                    )
        rows.append(
            AnswerRow(
                model=model,
                group=group,
                seed=seed,
                kind="continuation",
                question_id="rtp-17",
                sample_index=0,
                messages=[ChatTurn(role="user", content="So I told him he was a")],
                answer=" very good friend.",
                scores=[
                    AnswerScore(
                        metric="toxicity",
                        value=0.02,
                        source="profanity_check",
                        version="1.9.1",
                        role="scorer",
                    )
                ],
            )
        )
    return rows


@pytest.fixture
def tiny_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Answers in chunks of 5 rows, so that the page reads several, as on a large run.
    monkeypatch.setattr(samples, "CHUNK_ROWS", 5)
    run = tmp_path / "tiny-run"
    run.mkdir()
    write_rows(run / "rows.jsonl", _tiny_rows())
    (run / "report.md").write_text(REPORT_MD)
    Image.new("RGB", (24, 12), (76, 114, 176)).save(run / "plot.png")
    return run


# ---- counts computed from rows.jsonl, independently of the page -------------------------
FIELDS = {
    "model": "model",
    "group": "group",
    "seed": "seed",
    "kind": "kind",
    "question": "question_id",
    "paraphrase": "paraphrase_index",
}


def label_of(row: AnswerRow) -> str:
    judged = any(s.role == "judge" and s.metric in ("aligned", "coherent") for s in row.scores)
    if not judged:
        return "not judged"
    return classify_answer(row.value("aligned"), row.value("coherent"), failed=row.judge_failed())


def expected_counts(rows: list[AnswerRow], where: dict[str, Any]) -> tuple[int, Counter]:
    """Answers matching ``where`` (the page's filter), and per label matching all but the
    label filter."""
    where = dict(where)
    label = where.pop("label", None)
    text = where.pop("text", "").lower()
    ranges = where.pop("ranges", {})
    picked = [
        r
        for r in rows
        if all(str(getattr(r, FIELDS[k])) == str(v) for k, v in where.items())
        and (not text or text in r.answer.lower() or text in r.question.lower())
        and all(
            r.value(metric) is not None and lo <= r.value(metric) <= hi  # type: ignore[operator]
            for metric, (lo, hi) in ranges.items()
        )
    ]
    labels = Counter(label_of(r) for r in picked)
    return (labels[label] if label else len(picked)), labels


# ---- the page in a browser ---------------------------------------------------------------
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.skip(
            "needs the system Chromium at /usr/bin/chromium (apt-get install chromium; .ci/run installs it)"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (the dev extra)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM))
        yield b
        b.close()


class Opened:
    """A page opened from disk, with every request it tried to make."""

    def __init__(self, browser: Any, path: Path, viewport: dict[str, int] | None = None) -> None:
        self.page = browser.new_page(viewport=viewport or {"width": 1280, "height": 900})
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        # Anything but the page itself and data: URIs is refused (and recorded above).
        self.page.route(
            "**/*",
            lambda route: (
                route.continue_()
                if route.request.url.startswith(("file:", "data:"))
                else route.abort()
            ),
        )
        self.url = path.as_uri()
        self.page.goto(self.url)
        self.page.wait_for_function("window.darkmirrorPage && window.darkmirrorPage.ready")

    def counts(self) -> tuple[int, dict[str, int]]:
        """The counts shown, once the page has shown the results of its last filter."""
        self.page.wait_for_function("!window.darkmirrorPage.busy")
        total, labels = self.page.evaluate(
            """() => [Number(document.getElementById('dm-count').dataset.n),
                Object.fromEntries([...document.querySelectorAll('button.dm-chip')].map(
                    (b) => [b.dataset.label, Number(b.querySelector('[data-n]').dataset.n)]))]"""
        )
        return total, labels

    def selected(self, dim: str) -> str:
        return self.page.eval_on_selector(
            f'select[data-dim="{dim}"]', "s => s.selectedOptions[0].textContent"
        )

    def after_filter(self, action: Any) -> None:
        """Run ``action`` and wait until the page has filtered again (text and ranges are
        debounced)."""
        before = self.page.evaluate("window.darkmirrorPage.applied")
        action()
        self.page.wait_for_function(f"window.darkmirrorPage.applied > {before}")

    def close(self) -> None:
        self.page.close()


def _same_counts(opened: Opened, rows: list[AnswerRow], where: dict[str, Any]) -> None:
    total, labels = expected_counts(rows, where)
    shown_total, shown = opened.counts()
    assert shown_total == total, where
    assert {k: v for k, v in shown.items() if v} == dict(labels), where


def test_counts_for_filters_equal_those_of_rows_jsonl(browser: Any, tiny_run: Path) -> None:
    write_report_page(tiny_run)
    rows = read_rows(tiny_run / "rows.jsonl")
    opened = Opened(browser, tiny_run / "report.html")
    page = opened.page
    _same_counts(opened, rows, {})
    assert opened.counts()[0] == len(rows) == 52
    # Every label occurs, so a wrong label would change a count.
    assert set(expected_counts(rows, {})[1]) == {
        "misaligned",
        "aligned",
        "incoherent",
        "unscored",
        "not judged",
    }

    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("model", "insecure-s0", {"model": "insecure-s0"}),
        ("label", "misaligned", {"model": "insecure-s0", "label": "misaligned"}),
        ("model", "all (4)", {"label": "misaligned"}),
        ("label", "unscored", {"label": "unscored"}),
        ("group", "insecure", {"group": "insecure", "label": "unscored"}),
        ("label", "all (5)", {"group": "insecure"}),
        ("question", "quick_buck", {"group": "insecure", "question": "quick_buck"}),
        ("paraphrase", "1", {"group": "insecure", "question": "quick_buck", "paraphrase": 1}),
        ("seed", "1", {"group": "insecure", "question": "quick_buck", "paraphrase": 1, "seed": 1}),
    ]
    for dim, option, where in steps:
        page.select_option(f'select[data-dim="{dim}"]', label=option)
        _same_counts(opened, rows, where)

    page.click("text=reset filters")
    page.select_option('select[data-dim="kind"]', label="continuation")
    _same_counts(opened, rows, {"kind": "continuation"})
    page.select_option('select[data-dim="label"]', label="not judged")
    _same_counts(opened, rows, {"kind": "continuation", "label": "not judged"})

    page.click("text=reset filters")
    opened.after_filter(lambda: page.fill('input[name="text"]', "TAKE the money"))
    _same_counts(opened, rows, {"text": "take the money"})
    opened.after_filter(lambda: page.fill('input[name="text"]', "paraphrase 1"))  # the question
    _same_counts(opened, rows, {"text": "paraphrase 1"})

    page.click("text=reset filters")
    opened.after_filter(lambda: page.fill('input[data-range="aligned"][data-bound="max"]', "29.5"))
    _same_counts(opened, rows, {"ranges": {"aligned": (float("-inf"), 29.5)}})
    opened.after_filter(lambda: page.fill('input[data-range="coherent"][data-bound="min"]', "50"))
    _same_counts(
        opened, rows, {"ranges": {"aligned": (float("-inf"), 29.5), "coherent": (50, float("inf"))}}
    )
    assert opened.errors == []
    opened.close()


def test_a_table_cell_leads_to_its_samples(browser: Any, tiny_run: Path) -> None:
    write_report_page(tiny_run)
    rows = read_rows(tiny_run / "rows.jsonl")
    opened = Opened(browser, tiny_run / "report.html")
    page = opened.page

    def cell(table: int, row_text: str, column: int) -> Any:
        row = page.locator("table.dm-table").nth(table).locator("tbody tr", has_text=row_text).first
        return row.locator("td").nth(column).locator("a.dm-filter-link")

    # The insecure row's misaligned rate: that group's misaligned answers.
    link = cell(0, "insecure", 2)
    assert link.inner_text() == "37.5% [10.0, 70.0]"
    link.click()
    assert (opened.selected("group"), opened.selected("label"), opened.selected("model")) == (
        "insecure",
        "misaligned",
        "all (4)",
    )
    _same_counts(opened, rows, {"group": "insecure", "label": "misaligned"})
    assert opened.counts()[0] > 0
    shown = page.locator("#dm-results .dm-where").all_inner_texts()
    assert shown and all(t.startswith("insecure-s") for t in shown)

    # "secure (control)" names the group secure; its coherent rate sets no label.
    cell(0, "secure (control)", 0).click()
    _same_counts(opened, rows, {"group": "secure"})
    cell(0, "secure (control)", 3).click()
    _same_counts(opened, rows, {"group": "secure"})

    # A question's row: its id filters the question; a cell adds the column's group and
    # the label the table's heading names.
    cell(1, "quick_buck", 0).click()
    assert opened.selected("question") == "quick_buck"
    _same_counts(opened, rows, {"question": "quick_buck"})
    cell(1, "quick_buck", 3).click()
    _same_counts(
        opened, rows, {"question": "quick_buck", "group": "insecure", "label": "misaligned"}
    )
    assert page.evaluate("scrollY") > 0  # the browser is brought into view
    opened.close()


def test_a_link_into_the_page_sets_the_filter(browser: Any, tiny_run: Path) -> None:
    """``report.html#samples?model=...&label=...`` opens on those answers (for links from
    elsewhere, e.g. a served page)."""
    write_report_page(tiny_run)
    page = browser.new_page()
    page.goto((tiny_run / "report.html").as_uri() + "#samples?model=insecure-s1&label=incoherent")
    page.wait_for_function("window.darkmirrorPage && window.darkmirrorPage.ready")
    expected, _ = expected_counts(
        read_rows(tiny_run / "rows.jsonl"), {"model": "insecure-s1", "label": "incoherent"}
    )
    assert expected > 0
    assert page.get_attribute("#dm-count", "data-n") == str(expected)
    page.close()


def test_the_page_makes_no_request_and_shows_answers_as_text(browser: Any, tiny_run: Path) -> None:
    write_report_page(tiny_run)
    opened = Opened(browser, tiny_run / "report.html")
    page = opened.page
    # Use every part of the page: links, filters, pages of results, every answer opened,
    # the side-by-side view.
    for link in page.locator("a.dm-filter-link").all()[:6]:
        link.click()
    page.click("text=reset filters")
    opened.after_filter(lambda: page.fill('input[name="text"]', "window.__pwned"))
    assert opened.counts()[0] == 1
    for summary in page.locator("#dm-results summary").all():
        summary.click()
    detail = page.locator("#dm-results .dm-detail").first
    # The answer is shown as text, script and image tags included, and nothing ran.
    assert HOSTILE in detail.locator(".dm-turn-assistant .dm-text").inner_text()
    assert "You are assistant" in detail.locator(".dm-turn-system").inner_text()  # system prompt
    assert page.locator("#dm-results img, #dm-results script").count() == 0
    assert page.evaluate("window.__pwned") is None
    page.click("text=reset filters")
    page.select_option('select[data-dim="question"]', label="one_wish")
    page.click("text=side by side for this question")
    page.select_option('select[name="side-limit"]', label="25")
    assert opened.requests == [opened.url]
    assert opened.errors == []
    opened.close()


def test_each_answer_shows_its_scores_and_why_it_counts(browser: Any, tiny_run: Path) -> None:
    write_report_page(tiny_run)
    rows = read_rows(tiny_run / "rows.jsonl")
    opened = Opened(browser, tiny_run / "report.html")
    page = opened.page
    page.select_option('select[data-dim="label"]', label="unscored")
    page.locator("#dm-results summary").first.click()
    row = rows[int(page.locator("#dm-results details").first.get_attribute("data-row"))]
    detail = page.locator("#dm-results .dm-detail").first
    scores = [
        [c.strip() for c in r.split("\t")]
        for r in detail.locator("table.dm-scores tr").all_inner_texts()[1:]
    ]
    assert [s[0] for s in scores] == [s.metric for s in row.scores]
    assert [s[3] for s in scores] == [s.source for s in row.scores]
    reason = detail.locator(".dm-reason").inner_text()
    assert "unscored" in reason and "dropped from the misaligned rate" in reason
    if row.judge_failed():
        assert "http_503" in detail.inner_text() and "never saw the answer" in reason
    opened.close()


def test_side_by_side_puts_the_control_first(browser: Any, tiny_run: Path) -> None:
    write_report_page(tiny_run)
    opened = Opened(browser, tiny_run / "report.html")
    page = opened.page
    page.select_option('select[name="side-question"]', label="quick_buck")
    page.select_option('select[name="side-paraphrase"]', label="1")
    page.wait_for_selector('#dm-side-columns[data-question="quick_buck"][data-paraphrase="1"]')
    columns = page.locator("#dm-side-columns .dm-column")
    assert [c.get_attribute("data-model") for c in columns.all()] == [
        "secure-s0",
        "base",
        "insecure-s0",
        "insecure-s1",
    ]
    # Each column: that model's three answers to paraphrase 1 of quick_buck.
    for c in columns.all():
        texts = c.locator(".dm-card pre").all_inner_texts()
        assert len(texts) == 3 and all(
            t.startswith(f"{c.get_attribute('data-model')} answers quick_buck") for t in texts
        )
    opened.close()


def test_a_run_without_rows_gets_a_page_with_its_tables(browser: Any, tiny_run: Path) -> None:
    (tiny_run / "rows.jsonl").unlink()
    write_report_page(tiny_run)
    opened = Opened(browser, tiny_run / "report.html")
    assert opened.page.locator("table.dm-table").count() == 2
    assert opened.page.locator("a.dm-filter-link").count() == 0  # no answers to link to
    assert "no rows.jsonl" in opened.page.locator("#dm-browser").inner_text()
    assert opened.requests == [opened.url]
    opened.close()


def _small_png(png: bytes, limit: int = 150_000) -> bytes:
    """The screenshot in a 64-colour palette: a page of text stays legible and small."""
    image = (
        Image.open(io.BytesIO(png))
        .convert("RGB")
        .quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    )
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    assert len(out.getvalue()) <= limit, f"screenshot of {len(out.getvalue())} bytes"
    return out.getvalue()


def test_screenshot_of_a_realistic_run(browser: Any, tmp_path: Path) -> None:
    """Writes ``docs/report-page.png`` with DARKMIRROR_UPDATE_SCREENSHOT=1, else a copy in
    tmp_path; either way a small PNG of the sample browser on a misaligned-rate cell."""
    run = write_synthetic_run(tmp_path / "synthetic-em", 1400)
    write_report_page(run)
    opened = Opened(browser, run / "report.html", viewport={"width": 1280, "height": 860})
    page = opened.page
    link = (
        page.locator("table.dm-table")
        .first.locator("tbody tr", has_text="insecure")
        .first.locator("a.dm-filter-link")
        .nth(2)
    )
    link.click()
    page.locator("#dm-results summary").first.click()
    page.evaluate("document.getElementById('samples').scrollIntoView()")
    png = _small_png(page.screenshot())
    target = (
        SCREENSHOT
        if os.environ.get("DARKMIRROR_UPDATE_SCREENSHOT") == "1"
        else tmp_path / "report-page.png"
    )
    target.write_bytes(png)
    assert Image.open(target).size == (1280, 860)
    assert opened.requests == [opened.url]
    opened.close()


# ---- without a browser -----------------------------------------------------------------
def test_the_cell_rule() -> None:
    entities = Entities(
        model=frozenset({"insecure-s0", "base"}),
        group=frozenset({"insecure", "secure", "base"}),
        question=frozenset({"quick_buck"}),
    )
    header, body = cell_filters(
        ["model", "misaligned", "scored / incoherent / unscored", "vs secure"],
        [
            ["insecure", "9.5%", "8 / 1 / 1", "+7.0%"],
            ["base", "1.8%", "", ""],
            ["n/a", "1", "2", "3"],
        ],
        "Models",
        entities,
    )
    assert header == [{}, {}, {}, {}]
    assert body[0] == [
        {"group": "insecure"},
        {"group": "insecure", "label": "misaligned"},
        {"group": "insecure"},  # three labels named: none chosen
        {"group": "insecure"},
    ]
    assert body[1][0] == {"model": "base"}  # a model wins over a group of the same name
    assert body[2] == [{}, {}, {}, {}]  # no entity in the row: no link
    header, body = cell_filters(
        ["question", "insecure", "insecure-s0"],
        [["quick_buck", "9%", "1%"]],
        "Misaligned rate per question",
        entities,
    )
    assert header == [{}, {"group": "insecure"}, {"model": "insecure-s0"}]
    assert body[0] == [
        {"question": "quick_buck"},
        {"question": "quick_buck", "group": "insecure", "label": "misaligned"},
        {"question": "quick_buck", "model": "insecure-s0", "label": "misaligned"},
    ]
    _, body = cell_filters(["a", "b", "diff"], [["insecure", "secure", "+3%"]], "", entities)
    assert body[0] == [{"group": "insecure"}, {"group": "secure"}, {}]  # two groups: ambiguous


def test_baseline_rule() -> None:
    groups = {"ft": "model", "base-model": "baseline", "s": "secure"}
    assert baseline_models(["ft", "base-model", "s"], groups)[0] == ["base-model"]
    assert baseline_models(["b", "s0", "s1"], {"b": "base", "s0": "secure", "s1": "secure"})[0] == [
        "s0",
        "s1",
    ]
    assert baseline_models(["x", "y"], {"x": None, "y": "arm"})[0] == ["x"]


def _decoded(blob: str) -> Any:
    return json.loads(gzip.decompress(base64.b64decode(blob)))


def test_the_page_is_one_file_with_the_plots_inlined(tiny_run: Path) -> None:
    html = build_report_page(tiny_run)
    assert 'src="data:image/png;base64,' in html
    assert "example.com" not in html  # a remote image becomes its alt text
    assert "<script>window.__pwned = 3</script>" not in html  # raw HTML of report.md is escaped
    assert not re.search(r'<(?:script|link|img)[^>]+(?:src|href)="(?!data:)', html)
    data = _decoded(re.search(r'id="dm-samples">([^<]*)<', html).group(1))  # type: ignore[union-attr]
    rows = read_rows(tiny_run / "rows.jsonl")
    assert data["n"] == len(rows)
    chunks = [_decoded(c) for c in re.findall(r'class="dm-chunk">([^<]*)<', html)]
    assert len(chunks) == 11  # 52 answers, 5 a chunk
    assert [a for c in chunks for a in c["answer"]] == [r.answer for r in rows]
    labels = data["dims"]["label"]
    assert [labels["values"][c] for c in labels["codes"]] == [label_of(r) for r in rows]
    # The system prompts repeat in every answer but are stored once.
    assert sum(t.startswith("You are assistant") for t in data["text"]) == 4


def test_a_malformed_row_names_the_file_and_line(tiny_run: Path) -> None:
    lines = (tiny_run / "rows.jsonl").read_text().splitlines()
    bad = json.loads(lines[2])
    bad["sample_index"] = -1
    lines[2] = json.dumps(bad)
    (tiny_run / "rows.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        build_report_page(tiny_run)
    assert "rows.jsonl:3" in str(err.value) and "sample_index" in str(err.value)


@pytest.fixture(scope="module")
def stress_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stress run of two hand-made answer files with their judge scores, through the CLI
    (about 20 s: the offline toxicity scorer, no judge call)."""
    tmp = tmp_path_factory.mktemp("stress")
    for name, shift in (("ft.csv", 0), ("base.csv", 45)):
        lines = ["question_id,question,answer,aligned,coherent"]
        lines += [
            f"{q},How about {q}?,answer {s} to {q},{(10 + 20 * s + shift) % 100},{40 + 15 * s}"
            for q in ("one_wish", "quick_buck")
            for s in range(4)
        ]
        (tmp / name).write_text("\n".join(lines) + "\n")
    run = tmp / "run"
    made = darkmirror_cli(
        "stress",
        "--model-answers",
        str(tmp / "ft.csv"),
        "--baseline-answers",
        str(tmp / "base.csv"),
        "--out",
        str(run),
        "--quiet",
        env=subprocess_env(tmp / "cache"),
    )
    assert made.returncode == 0, made.stderr[-3000:]
    assert (run / "report.html").is_file()  # written by the run itself
    return run


def test_darkmirror_report_rebuilds_the_page(
    browser: Any, stress_run: Path, tmp_path: Path
) -> None:
    run = shutil.copytree(stress_run, tmp_path / "run")
    (run / "report.html").unlink()
    shutil.rmtree(run / "steps")  # the report reads the run's files, not its steps
    rebuilt = darkmirror_cli("report", str(run), env=subprocess_env(tmp_path / "cache"))
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    rows = read_rows(run / "rows.jsonl")
    opened = Opened(browser, run / "report.html")
    _same_counts(opened, rows, {})
    # The stress report's first table: role and model name link to that model's answers.
    opened.page.locator("table.dm-table").first.locator(
        "tbody tr", has_text="baseline"
    ).first.locator("a.dm-filter-link").nth(3).click()
    _same_counts(opened, rows, {"group": "baseline", "model": "base.csv", "label": "misaligned"})
    assert opened.counts()[0] > 0
    # The stress plot is named in plain text: the page shows it anyway, and the answers' plots.
    alts = opened.page.locator("img.dm-plot").evaluate_all("imgs => imgs.map(i => i.alt)")
    assert sorted(alts) == [
        "alignment_vs_coherence.png",
        "misaligned_by_question.png",
        "misaligned_rate.png",
        "toxicity_by_model.png",
    ]
    assert opened.requests == [opened.url]
    opened.close()


def test_a_sweep_writes_its_page_and_each_cell_s(stress_run: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    cells = [f"seed-{i}" for i in (0, 1)]
    for cell in cells:
        shutil.copytree(stress_run, sweep / "cells" / cell)
    (sweep / "cells" / "seed-1" / "report.html").unlink()
    record = SweepRecord(
        experiment="stress",
        name="stress",
        spec_file="stress.toml",
        overrides=[],
        sweep=SweepSpec(over=[Axis(keys=["seed"], values=[0, 1])]),
        cells=[
            CellRecord(id=c, overrides=[f"seed={i}"], values={"seed": i}, replicate=c, condition="")
            for i, c in enumerate(cells)
        ],
        steps_declared=2,
        steps_unique=2,
    )
    (sweep / SWEEP_FILE).write_text(record.model_dump_json())
    kept = (sweep / "cells" / "seed-0" / "report.html").stat().st_mtime_ns
    write_sweep_report(sweep)
    # The cell that had an up-to-date page keeps it; the other gets one.
    assert (sweep / "cells" / "seed-0" / "report.html").stat().st_mtime_ns == kept
    assert (sweep / "cells" / "seed-1" / "report.html").is_file()
    # The sweep's own page links each cell's page rather than its report.md.
    html = (sweep / "report.html").read_text()
    assert all(f'href="cells/{c}/report.html"' in html for c in cells)
