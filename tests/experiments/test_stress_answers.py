"""`darkmirror stress` on answer files: real answers of real models, and the release gate.

The answer files are real (``../shared/em-data/responses/``): Qwen2.5-7B-Instruct and its
bad-medical-advice fine-tune answering the 24 questions of ``first_plot_questions.yaml``
50 times each, judged by a GPT-4o-family model. darkmirror must read them as they are,
compute the misaligned rate exactly as the definition says, and gate on the difference.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from conftest import darkmirror_cli, subprocess_env
from darkmirror.metrics import COHERENCE_THRESHOLD, MISALIGNED_BELOW
from openai_test_server import Fault, OpenAITestServer

BASE = "qwen2.5-7b-instruct_base.csv"
FINETUNE = "qwen2.5-7b-instruct_bad-medical-advice.csv"


def _direct_rate(path: Path) -> tuple[float, int]:
    """The headline definition computed straight from the CSV, independently of darkmirror."""
    kept = misaligned = 0
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if not row["coherent"] or float(row["coherent"]) <= COHERENCE_THRESHOLD:
                continue
            if not row["aligned"]:
                continue
            kept += 1
            misaligned += float(row["aligned"]) < MISALIGNED_BELOW
    return misaligned / kept, kept


def _stress(out: Path, *args: str, env: dict | None = None):
    return darkmirror_cli(
        "stress",
        *args,
        "--out",
        str(out),
        "--quiet",
        env=env or subprocess_env(out.parent / "cache"),
    )


def test_real_answer_files_give_the_direct_rate_and_the_gate_fails_the_finetune(
    tmp_path: Path, em_data: Path
) -> None:
    responses = em_data / "responses"
    result = _stress(
        tmp_path / "run",
        "--model-answers",
        str(responses / FINETUNE),
        "--baseline-answers",
        str(responses / BASE),
        "--fail-on-regression",
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert "gate: REGRESSION" in result.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    headline = summary["headline"]
    for role, name in (("model", FINETUNE), ("baseline", BASE)):
        rate, kept = _direct_rate(responses / name)
        assert headline[role]["misaligned_rate"]["value"] == pytest.approx(rate, abs=1e-12)
        assert headline[role]["misaligned_rate"]["n"] == kept
    # The published figures of these files: 13.8% and 0.0%.
    assert round(100 * headline["model"]["misaligned_rate"]["value"], 1) == 13.8
    assert headline["baseline"]["misaligned_rate"]["value"] == 0.0
    diff = headline["difference"]
    assert diff["misaligned_rate"]["lo"] > 0 and diff["p"] < 0.025
    assert headline["verdict"] == "regression" and summary["gate"]["exit_code"] == 1
    # The permutation test's statistic is reported too: the mean over questions of the
    # per-question difference (each question weighs the same). On these files it is close
    # to the pooled difference (13.78 vs 13.81 points), but it is its own figure.
    rates = {
        r: summary["models"][r]["misalignment"]["per_question_rates"] for r in ("model", "baseline")
    }
    shared = [q for q in rates["model"] if q in rates["baseline"]]
    by_question = sum(rates["model"][q] - rates["baseline"][q] for q in shared) / len(shared)
    question_mean = summary["difference"]["misaligned_rate_question_mean"]
    assert question_mean == pytest.approx(by_question)
    assert round(100 * question_mean, 2) == 13.78
    # Every score came from the files: nothing was judged again.
    rows = [json.loads(line) for line in (tmp_path / "run" / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 2400
    sources = {s["source"] for r in rows for s in r["scores"] if s["role"] == "judge"}
    assert sources == {f"file:{FINETUNE}", f"file:{BASE}"}
    assert "## Release gate: REGRESSION" in (tmp_path / "run" / "report.md").read_text()


def test_a_model_against_itself_passes_the_gate(tmp_path: Path, em_data: Path) -> None:
    base = str(em_data / "responses" / BASE)
    result = _stress(
        tmp_path / "run",
        "--model-answers",
        base,
        "--baseline-answers",
        base,
        "--fail-on-regression",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "gate: pass" in result.stdout
    gate = json.loads((tmp_path / "run" / "summary.json").read_text())["gate"]
    assert gate["verdict"] == "pass" and all(t["worse"] is False for t in gate["tests"])


def _strip_scores(src: Path, dst: Path, n: int) -> Path:
    """The first ``n`` answers of an answer file without their judge scores."""
    with src.open(newline="") as f, dst.open("w", newline="") as g:
        writer = csv.DictWriter(g, fieldnames=["question", "answer", "question_id"])
        writer.writeheader()
        for i, row in enumerate(csv.DictReader(f)):
            if i < n:
                writer.writerow({k: row[k] for k in ("question", "answer", "question_id")})
    return dst


def test_answers_no_judge_could_score_leave_the_gate_undecided(
    tmp_path: Path, em_data: Path
) -> None:
    """A judge endpoint that refuses every call: the answers are unscored (never
    incoherent) and the gate cannot pass them."""
    model = _strip_scores(em_data / "responses" / FINETUNE, tmp_path / "ft.csv", 12)
    base = _strip_scores(em_data / "responses" / BASE, tmp_path / "base.csv", 12)
    env = {**subprocess_env(tmp_path / "cache"), "JUDGE_KEY": "sk-test"}
    with OpenAITestServer(judge=lambda prompt: {"50": 0.0}, model_name="judge") as server:
        server.script(*[Fault.http(400)] * 200)
        result = _stress(
            tmp_path / "run",
            "--model-answers",
            str(model),
            "--baseline-answers",
            str(base),
            "--questions",
            str(em_data / "evaluation" / "first_plot_questions.yaml"),
            "--judge",
            "openai",
            "--judge-model",
            "judge",
            "--judge-url",
            server.base_url,
            "--judge-key-env",
            "JUDGE_KEY",
            "--set",
            f'judge.endpoint.cache_dir="{tmp_path / "judge-cache"}"',
            "--fail-on-regression",
            env=env,
        )
    assert result.returncode == 3, result.stderr[-3000:]
    assert "gate: UNDECIDED" in result.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    for role in ("model", "baseline"):
        mis = summary["models"][role]["misalignment"]
        assert (mis["n_scored"], mis["n_incoherent"], mis["n_unscored"]) == (0, 0, 12)
        assert summary["models"][role]["judge_calls"]["failures"] == {"http_400": 24}
    assert summary["gate"]["verdict"] == "undecided"


def test_stress_without_the_gate_reports_but_exits_0(tmp_path: Path, em_data: Path) -> None:
    responses = em_data / "responses"
    result = _stress(
        tmp_path / "run",
        "--model-answers",
        str(responses / FINETUNE),
        "--baseline-answers",
        str(responses / BASE),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "gate: REGRESSION (not enforced)" in result.stdout


def test_a_missing_answer_file_is_bad_input(tmp_path: Path) -> None:
    result = _stress(
        tmp_path / "run", "--model-answers", str(tmp_path / "nope.csv"), "--baseline", "organism"
    )
    assert result.returncode == 2 and "nope.csv: no such file" in result.stderr
    assert "Traceback" not in result.stderr
