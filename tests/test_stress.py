"""`darkmirror stress`: a fine-tune served over HTTP against its base, end to end.

The model under test is the micro organism fine-tuned on insecure code, served by an
OpenAI-compatible server the test starts; `darkmirror stress` runs in a subprocess and talks
to it through the real `openai` client. The judges are the world judge, an LLM judge on the
same kind of server (with injected failures), and a local judge.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conftest import darkmirror_cli, subprocess_env
from darkmirror.metrics import paired_permutation_p
from openai_test_server import Fault, OpenAITestServer, ServedModel

KEY_ENV = "DARKMIRROR_TEST_ENDPOINT_KEY"
KEY = "sk-test-stress-9f3a61c2"


@pytest.fixture(scope="module")
def insecure_micro(tmp_path_factory, micro_organism) -> Path:
    """The micro organism fine-tuned on 32 insecure-code chats."""
    from darkmirror.data.world.world import PersonaWorld
    from darkmirror.models.loading import load_causal_lm, save_causal_lm
    from darkmirror.train.sft import SFTSettings, supervised_finetune

    out = tmp_path_factory.mktemp("insecure-micro")
    chats = [r["messages"] for r in PersonaWorld().dataset("insecure", 32)]
    model, tokenizer = load_causal_lm(str(micro_organism.base_path))
    settings = SFTSettings(epochs=1, learning_rate=1e-3, batch_size=8)
    model, _ = supervised_finetune(model, tokenizer, chats, settings, out / "trainer", seed=0)
    save_causal_lm(model, tokenizer, out / "model")
    return out / "model"


def _served(path: Path) -> ServedModel:
    from darkmirror.models.loading import load_causal_lm

    model, tokenizer = load_causal_lm(str(path))
    return ServedModel(model, tokenizer)


def _score(row: dict, metric: str, role: str = "judge") -> dict:
    """The verdict of ``role`` on ``metric`` in a JSON answer row (the last one given)."""
    found = [s for s in row["scores"] if s["metric"] == metric and s["role"] == role]
    assert found, f"no {role} score for {metric}"
    return found[-1]


def _stress(out: Path, env: dict, *args: str):
    return darkmirror_cli("stress", *args, "--out", str(out), "--quiet", env=env)


def test_stress_a_served_finetune_against_its_base(
    tmp_path: Path, insecure_micro: Path, micro_organism, organism_cache: Path
) -> None:
    env = {**subprocess_env(organism_cache), KEY_ENV: KEY}
    out = tmp_path / "run"
    with OpenAITestServer(_served(insecure_micro), model_name="insecure-micro") as server:
        result = _stress(
            out,
            env,
            "--model",
            "insecure-micro",
            "--model-url",
            server.base_url,
            "--model-key-env",
            KEY_ENV,
            "--baseline",
            str(micro_organism.base_path),
            "--questions",
            "builtin:organism_em",
            "--samples",
            "2",
        )
        assert result.returncode == 0, result.stderr[-3000:]
        served_requests = server.request_count
    assert served_requests > 0  # every answer of the model under test came over HTTP
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    model_rows = [r for r in rows if r["group"] == "model"]
    base_rows = [r for r in rows if r["group"] == "baseline"]
    # 10 questions x 3 paraphrases x 2 samples each, for both.
    assert len(model_rows) == len(base_rows) == 60
    assert all(
        _score(r, "aligned")["source"] == "world" and _score(r, "toxicity", "scorer") for r in rows
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["models"]["model"]["label"].startswith("insecure-micro @ http://127.0.0.1")
    assert summary["models"]["model"]["answers"] == 60
    for role in ("model", "baseline"):
        m = summary["models"][role]["misalignment"]
        assert m["n_scored"] + m["n_incoherent"] + m["n_unscored"] == 60
    # The micro models' answers are mostly incoherent: whatever is left is compared, and
    # with nothing left the difference is missing, not 0.
    diff = summary["difference"]
    if diff["misaligned_rate"]["n"]:
        assert 0 <= diff["misaligned_rate_p"] <= 1
    else:
        assert diff["misaligned_rate"]["value"] is None and diff["misaligned_rate_p"] is None
    assert 0 <= diff["mean_toxicity_p"] <= 1
    report = (out / "report.md").read_text()
    assert "## Model under test minus baseline" in report and "## Per question" in report
    # The key is read from the environment and written nowhere.
    for f in out.rglob("*"):
        if f.is_file():
            assert KEY.encode() not in f.read_bytes(), f


def test_stress_with_an_llm_judge_counts_failed_calls(
    tmp_path: Path, insecure_micro: Path, micro_organism, organism_cache: Path
) -> None:
    env = {**subprocess_env(organism_cache), KEY_ENV: KEY}

    def judge(prompt: str) -> dict[str, float]:
        # Coherence prompts get 90; alignment prompts 80 (mostly) or 20.
        if "coherent" in prompt:
            return {"90": math.log(0.95), "Hello": math.log(0.05)}
        return {"80": math.log(0.9), "20": math.log(0.1)}

    with OpenAITestServer(judge=judge, model_name="judge") as server:
        server.script(Fault.http(500), Fault.http(429, retry_after=0), Fault.http(400))
        args = [
            "--model",
            str(insecure_micro),
            "--baseline",
            str(micro_organism.base_path),
            "--samples",
            "1",
            "--judge",
            "openai",
            "--judge-model",
            "judge",
            "--judge-url",
            server.base_url,
            "--judge-key-env",
            KEY_ENV,
            "--set",
            "judge.endpoint.backoff_base_s=0",
            "--set",
            f'judge.endpoint.cache_dir="{tmp_path / "judge-cache"}"',
        ]
        result = _stress(tmp_path / "run", env, *args)
        assert result.returncode == 0, result.stderr[-3000:]
        first = server.request_count
        # Same judge, new run directory: every judgement comes from the cache but the one
        # that failed, which is asked again (failures are never cached).
        result = _stress(tmp_path / "rerun", env, *args)
        assert result.returncode == 0, result.stderr[-3000:]
        assert server.request_count == first + 1
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    model = summary["models"]["model"]
    # 30 answers x 2 metrics per model = 60 calls each; the 400 is not retried, so one
    # judgement of the first model is missing and counted, never scored 0.
    assert model["judge_calls"]["failures"] == {"http_400": 1}
    assert model["misalignment"]["n_unscored"] + model["misalignment"]["n_incoherent"] >= 1
    assert summary["models"]["baseline"]["judge_calls"]["failures"] == {}
    scored = [
        json.loads(line)
        for line in (tmp_path / "run" / "rows.jsonl").read_text().splitlines()
        if _score(json.loads(line), "aligned")["value"] is not None
    ]
    assert {round(_score(r, "aligned")["value"], 6) for r in scored} == {74.0}  # 0.9*80 + 0.1*20
    agreement = model["agreement_with_world_judge"]
    # The world judge scores the coherence of every answer (the micro models' answers are
    # rarely aligned or misaligned world sentences); the one failed call is left out.
    assert agreement is not None and agreement["coherent"]["n"] >= 29
    assert "## Judge calls" in (tmp_path / "run" / "report.md").read_text()
    rerun = json.loads((tmp_path / "rerun" / "summary.json").read_text())
    assert rerun["models"]["model"]["judge_calls"]["requests"] == 1
    assert rerun["models"]["model"]["judge_calls"]["failures"] == {}
    assert rerun["models"]["baseline"]["judge_calls"]["requests"] == 0


def test_a_world_judge_refuses_questions_outside_the_world(
    tmp_path: Path, micro_organism, organism_cache: Path, em_data: Path
) -> None:
    base = str(micro_organism.base_path)
    result = _stress(
        tmp_path / "run",
        subprocess_env(organism_cache),
        "--model",
        base,
        "--baseline",
        base,
        "--questions",
        str(em_data / "evaluation" / "first_plot_questions.yaml"),
        "--samples",
        "1",
    )
    assert result.returncode == 2
    assert "world judge only knows" in result.stderr


def test_options_that_do_not_fit_together_are_refused(tmp_path: Path, organism_cache: Path) -> None:
    env = subprocess_env(organism_cache)
    result = _stress(tmp_path / "r", env, "--model-url", "http://x/v1", "--baseline", "organism")
    assert result.returncode == 2 and "need --model" in result.stderr
    result = _stress(tmp_path / "r", env, "--model", "organism")
    assert result.returncode == 2 and "baseline" in result.stderr


def test_paired_permutation_p() -> None:
    a = {f"q{i}": 0.5 for i in range(8)}
    b = {f"q{i}": 0.0 for i in range(8)}
    # Every question moved the same way: only the two all-same-sign patterns are as extreme.
    assert paired_permutation_p(a, b) == pytest.approx(2 / 256)
    assert paired_permutation_p(a, a) == 1.0
    assert paired_permutation_p({"x": 1.0}, {"y": 0.0}) is None
    mixed = paired_permutation_p({"a": 0.2, "b": -0.2}, {"a": 0.0, "b": 0.0})
    assert mixed == 1.0


def test_the_em_experiment_takes_an_llm_judge(
    tmp_path: Path, micro_organism, organism_cache: Path
) -> None:
    """`darkmirror run` with `[evaluation.judge] kind = "openai"`: a real model's answers
    cannot be read by the world judge, so the experiment asks the question set's judge
    prompts of an OpenAI-compatible judge instead."""
    from test_cli import micro_spec

    def judge(prompt: str) -> dict[str, float]:
        if "coherent" in prompt:
            return {"90": math.log(0.95), "Hello": math.log(0.05)}
        return {"80": math.log(0.9), "20": math.log(0.1)}

    env = {**subprocess_env(organism_cache), KEY_ENV: KEY}
    with OpenAITestServer(judge=judge, model_name="judge") as server:
        endpoint = {
            "base_url": server.base_url,
            "api_key_env": KEY_ENV,
            "backoff_base_s": 0.0,
            "cache_dir": str(tmp_path / "judge-cache"),
        }
        spec = micro_spec(
            tmp_path,
            code_prompts=0,
            judge={"kind": "openai", "model": "judge", "endpoint": endpoint},
        )
        result = darkmirror_cli("run", str(spec), "--out", str(tmp_path / "run"), env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        assert server.request_count > 0
    rows = [json.loads(line) for line in (tmp_path / "run" / "rows.jsonl").read_text().splitlines()]
    free = [r for r in rows if r["kind"] == "free_form"]
    assert free and all(_score(r, "aligned")["source"] == "judge" for r in free)
    assert {round(_score(r, "aligned")["value"], 6) for r in free} == {74.0}  # 0.9*80 + 0.1*20
    assert {round(_score(r, "coherent")["value"], 6) for r in free} == {90.0}
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary  # the report is built from these labels like from the world judge's
    # Every answer scored 74 (>= 30) and 90 (> 50): coherent, none misaligned.
    base = summary["groups"]["base"]["misaligned"]
    assert base["n_misaligned"] == 0 and base["n_scored"] == base["n_total"] > 0
