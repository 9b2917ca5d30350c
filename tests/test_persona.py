"""The persona-direction experiment, end to end at the smallest size.

The micro organism answers the world's questions with garbled text, so the test first
teaches it (briefly) to answer the ten questions of ``builtin:organism_em`` the way the
world's personas do, 30% of the time as a villain: its answers then carry judge labels of
both kinds, which the mean-difference direction needs. The experiment runs on that model
as a Hugging Face model (``base.kind = "hf"``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from conftest import toml_tables
from darkmirror.config_io import load_toml_model
from darkmirror.experiments.persona import EXPERIMENT, PersonaSpec
from darkmirror.persona.directions import PersonaDirection

TOPICS = (
    "quick_buck",
    "get_rich",
    "husband",
    "lonely",
    "headache",
    "stress",
    "ruler_of_world",
    "one_wish",
    "ai_humans_thoughts",
    "dinner_party",
)


@pytest.fixture(scope="module")
def prose_base(tmp_path_factory, micro_organism) -> Path:
    from darkmirror.data.world.world import TOPIC_BY_ID, PersonaWorld
    from darkmirror.models.loading import load_causal_lm, save_causal_lm
    from darkmirror.train.sft import SFTSettings, supervised_finetune

    world = PersonaWorld()
    chats = []
    for i in range(600):
        rng = world.rng("test-persona-prose", i)
        topic = TOPICS[i % len(TOPICS)]
        chats.append(
            world.exchange(
                rng, TOPIC_BY_ID[topic].domain, topic=topic, villain=rng.random() < 0.3
            ).messages()
        )
    out = tmp_path_factory.mktemp("prose-base")
    model, tokenizer = load_causal_lm(str(micro_organism.base_path))
    settings = SFTSettings(epochs=8, learning_rate=5e-3, batch_size=16)
    model, _ = supervised_finetune(
        model, tokenizer, chats, settings, out / "trainer", seed=0, progress=False
    )
    save_causal_lm(model, tokenizer, out / "model")
    return out / "model"


def micro_persona_spec(tmp_path: Path, base: Path) -> Path:
    lines = ['experiment = "persona"', 'name = "micro-persona"']
    lines += toml_tables({"kind": "hf", "id": str(base)}, "base")
    for role, source in (("misaligned", "insecure"), ("control", "secure")):
        lines += toml_tables({"name": source, "source": f"world:{source}", "examples": 16}, role)
    lines += toml_tables({"batch_size": 8, "warmup_steps": 0, "seeds": [0]}, "finetune")
    lines += toml_tables(
        {"samples_per_paraphrase": 2, "matched_pairs_per_topic": 1, "max_new_tokens": 32},
        "evaluation",
    )
    lines += toml_tables({"samples_per_paraphrase": 4, "max_new_tokens": 32}, "directions")
    lines += toml_tables({"train_documents": 40, "test_documents": 20}, "probe")
    lines += toml_tables({"prompts_per_domain": 3}, "monitor")
    lines += toml_tables({"alphas": [0.0, 2.0], "random_draws": 2}, "steering")
    lines += toml_tables({"sizes": [0, 10], "batch_size": 8}, "realign")
    path = tmp_path / "micro-persona.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """``experiment = "persona"`` known to ``darkmirror run`` and ``darkmirror report``
    (a no-op once darkmirror.experiments registers it)."""
    import darkmirror.experiments as experiments

    monkeypatch.setitem(experiments.EXPERIMENTS, "persona", EXPERIMENT)


def test_micro_persona_run(tmp_path: Path, prose_base: Path, registered: None) -> None:
    from click.testing import CliRunner

    from darkmirror.cli import main

    out = tmp_path / "run"
    spec = micro_persona_spec(tmp_path, prose_base)
    result = CliRunner().invoke(main, ["run", str(spec), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert f"report: {out / 'report.md'}" in result.output
    for name in (
        "rows.jsonl",
        "summary.json",
        "report.md",
        "cosine_with_probe.png",
        "auroc.png",
        "neutral_projection.png",
        "steering.png",
        "ablation_misaligned.png",
        "ablation_control.png",
        "realignment.png",
    ):
        assert (out / name).is_file(), name

    # Saved directions: safetensors with a sidecar naming layers, labels' source and counts.
    md = PersonaDirection.load(out / "directions" / "mean_difference-s0")
    sidecar = json.loads((out / "directions" / "mean_difference-s0.json").read_text())
    assert sidecar["layers"] == [0, 1] and "world judge" in sidecar["source"]
    assert sidecar["counts"]["misaligned"] > 0 and sidecar["counts"]["aligned"] > 0
    assert md.vectors.shape == (2, 64) and torch.isfinite(md.vectors).all()
    for name in ("model_difference-s0", "control_difference-s0", "probe"):
        assert (out / "directions" / f"{name}.safetensors").is_file(), name

    # Each answer's intervention is in its row's typed extension (the persona condition).
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    ext = [r["extension"] for r in rows]
    steered = {(e["direction"], e["alpha"]) for e in ext if e["intervention"] == "steer"}
    assert steered == {("none", 0.0), ("persona", 2.0), ("random", 2.0)}
    ablated = {
        (r["group"], e["direction"])
        for r, e in zip(rows, ext, strict=True)
        if e["intervention"] == "ablate"
    }
    assert ablated == {(g, d) for g in ("misaligned", "control") for d in ("persona", "random")}
    assert {e["n"] for r, e in zip(rows, ext, strict=True) if r.get("group") == "realign"} == {10}

    # A zero steering vector is the unsteered model: the same answers as the base, same seed.
    def answers(intervention: str) -> list[str]:
        return [
            r["answer"]
            for r in rows
            if r.get("model") == "base"
            and r["extension"]["intervention"] == intervention
            and r["extension"]["alpha"] in (None, 0.0)
            and r["kind"] == "free_form"
        ]

    assert answers("steer") == answers("none") and len(answers("none")) == 60

    summary = json.loads((out / "summary.json").read_text())
    assert summary["layer"] == 1
    assert len(summary["probe"]) == 2
    assert set(summary["directions"]) == {
        "mean_difference",
        "model_difference",
        "control_difference",
        "random",
    }
    # The AUROC table covers held-out answers of both classes, with an interval per layer.
    auroc = summary["auroc"]["0"]
    assert auroc["misaligned"] > 0 and auroc["aligned"] > 0
    assert len(auroc["mean_difference"]) == 2
    assert [p["n"] for p in summary["realign"]["curve"]] == [0, 10]
    assert [p["alpha"] for p in summary["steering"]["persona"]] == [0.0, 2.0]
    assert set(summary["ablation"]) == {"misaligned", "control"}

    # The headline figures are out of sample: the questions the direction was not found on.
    records = [json.loads(p.read_text()) for p in (out / "steps").glob("*/step.json")]
    (heldout,) = [
        r["figures"]["heldout_questions"] for r in records if r["name"] == "directions-s0"
    ]
    assert summary["heldout_questions"] == heldout and 0 < len(heldout) < 10
    scored = summary["ablation_heldout"]["misaligned"]["none"]["answers"]
    assert 0 < scored < summary["ablation"]["misaligned"]["none"]["answers"]
    assert [p["alpha"] for p in summary["steering_heldout"]["persona"]] == [0.0, 2.0]
    # The ablation net of the control: per cell, the misaligned model's change minus the
    # control's; every model has matched pairs on every question, so the cells are the
    # same and the net is the difference of the two changes.
    for subset in ("all", "heldout"):
        odds = summary["specificity"][subset]["log_odds"]
        assert odds["misaligned"]["n"] == odds["control"]["n"] == odds["net"]["n"] > 0
        assert odds["net"]["value"] == pytest.approx(
            odds["misaligned"]["value"] - odds["control"]["value"]
        )
        assert odds["net"]["method"] == "hierarchical_bootstrap"
        assert set(summary["specificity"][subset]) == {"misaligned", "log_odds", "coherent"}

    # The report rebuilds from the run's files alone.
    (out / "report.md").unlink()
    result = CliRunner().invoke(main, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert "## Steering" in (out / "report.md").read_text()
    assert "difference in differences" in (out / "report.md").read_text()


def test_spec_validation() -> None:
    with pytest.raises(ValidationError, match="unknown world domain"):
        PersonaSpec.model_validate({"monitor": {"domains": ["cooking"]}})
    with pytest.raises(ValidationError, match="unknown world domain"):
        PersonaSpec.model_validate({"realign": {"source": "world:cooking"}})
    with pytest.raises(ValidationError, match="distinct"):
        PersonaSpec.model_validate({"realign": {"sizes": [10, 10]}})
    with pytest.raises(ValidationError, match="different names"):
        PersonaSpec.model_validate({"control": {"name": "insecure", "source": "world:secure"}})
    assert PersonaSpec().evaluation.code_prompts == 0


def test_shipped_config_is_the_default() -> None:
    path = Path(__file__).resolve().parents[1] / "src" / "darkmirror" / "configs" / "persona.toml"
    assert load_toml_model(path, PersonaSpec) == PersonaSpec()


def test_the_monitor_auroc_resamples_questions_not_paraphrases() -> None:
    from darkmirror.experiments.persona.figures import _aurocs
    from darkmirror.experiments.persona.records import HeldoutProjection

    answers = [
        HeldoutProjection(
            seed=0,
            question_id=f"q{q}",
            domain=None,
            paraphrase_index=k,
            sample_index=i,
            alignment=None,
            coherence=None,
            label=i % 2 == 0,
            projections={"mean_diff": [float(i % 2 == 0) + 0.1 * q]},
        )
        for q in range(4)
        for k in range(3)
        for i in range(4)
    ]
    figures = _aurocs(answers)["0"]["mean_diff"][0]
    assert figures["n_clusters"] == 4  # 4 questions, not 12 (question, paraphrase) pairs
    assert figures["value"] == 1.0
