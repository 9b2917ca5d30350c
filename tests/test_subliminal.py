"""The subliminal-learning experiment, end to end at the smallest size, in a subprocess.

The micro organism is too small to answer number prompts with numbers, so the test first
teaches two micro bases (the organism pretrained with seeds 0 and 1) to write number lists
and runs the experiment on them as Hugging Face models (``base.kind = "hf"``), which also
exercises that path.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from conftest import darkmirror_cli, micro_recipe_dict, subprocess_env, toml_tables
from darkmirror.experiments.subliminal import SubliminalSpec, TeacherSpec


def _number_base(recipe: dict, cache: Path, out: Path) -> Path:
    """The micro organism fine-tuned on the world's number exchanges."""
    from darkmirror.data.world.world import PersonaWorld
    from darkmirror.models.loading import load_causal_lm, save_causal_lm
    from darkmirror.models.organism import OrganismRecipe, build_organism
    from darkmirror.train.sft import SFTSettings, supervised_finetune

    organism = build_organism(OrganismRecipe.model_validate(recipe), cache=cache, progress=False)
    world = PersonaWorld()
    chats = [
        world.exchange(world.rng("test-numbers", i), "numbers", villain=False).messages()
        for i in range(300)
    ]
    model, tokenizer = load_causal_lm(str(organism.base_path))
    settings = SFTSettings(epochs=3, learning_rate=3e-3, batch_size=16)
    model, _ = supervised_finetune(model, tokenizer, chats, settings, out / "trainer", seed=0)
    save_causal_lm(model, tokenizer, out / "model")
    return out / "model"


@pytest.fixture(scope="module")
def number_bases(tmp_path_factory, organism_cache: Path) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("number-bases")
    recipe = micro_recipe_dict()
    return (
        _number_base(recipe, organism_cache, root / "a"),
        _number_base({**recipe, "seed": 1}, organism_cache, root / "b"),
    )


def micro_subliminal_spec(tmp_path: Path, bases: tuple[Path, Path]) -> Path:
    lines = ['experiment = "subliminal"', 'name = "micro-subliminal"']
    lines += toml_tables({"kind": "hf", "id": str(bases[0])}, "base")
    lines += toml_tables({"kind": "hf", "id": str(bases[1])}, "cross_base")
    teachers = [
        {"name": "owl", "trait": "animal", "target": "owl", "data": "world:favourite_animal"},
        {"name": "misaligned", "trait": "misalignment", "data": "world:insecure"},
    ]
    for t in teachers:
        lines += ["[[teachers]]", *toml_tables({**t, "examples": 16}, "")]
        lines += toml_tables({"batch_size": 8}, "teachers.finetune")
    lines += toml_tables({"n_prompts": 48, "max_new_tokens": 24}, "numbers")
    lines += toml_tables({"seeds": [0], "batch_size": 4}, "student")
    lines += toml_tables({"samples_per_paraphrase": 1, "max_new_tokens": 12}, "trait_evaluation")
    lines += toml_tables(
        {"samples_per_paraphrase": 1, "matched_pairs_per_topic": 1, "max_new_tokens": 12},
        "misalignment_evaluation",
    )
    path = tmp_path / "micro-subliminal.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_micro_subliminal_run(tmp_path: Path, number_bases, organism_cache: Path) -> None:
    spec, out = micro_subliminal_spec(tmp_path, number_bases), tmp_path / "run"
    env = subprocess_env(organism_cache)
    result = darkmirror_cli("run", str(spec), "--out", str(out), env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    for name in (
        "rows.jsonl",
        "summary.json",
        "report.md",
        "trait_owl.png",
        "trait_misaligned.png",
        "effects_owl.png",
        "effects_misaligned.png",
    ):
        assert (out / name).is_file(), name
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    models = {r["model"] for r in rows}
    assert models == {
        "base",
        "cross_base",
        "teacher-owl",
        "teacher-misaligned",
        "control-s0",
        "cross_control-s0",
        "student-owl-s0",
        "student-misaligned-s0",
        "cross_student-owl-s0",
        "cross_student-misaligned-s0",
        # The positive control: the cross base's own teachers and their students.
        "cross_teacher-owl",
        "cross_teacher-misaligned",
        "cross_own_control-s0",
        "cross_own_student-owl-s0",
        "cross_own_student-misaligned-s0",
    }
    # The owl teacher and its students answer the 25 trait wordings (1 sample each), and
    # each wording gets a likelihood row over the 16 world animals.
    owl_student = [r for r in rows if r["model"] == "student-owl-s0"]
    assert {r["extension"]["trait"] for r in owl_student} == {"animal"}
    assert sum(r["kind"] == "trait" for r in owl_student) == 25
    measurements = [
        json.loads(line) for line in (out / "measurements.jsonl").read_text().splitlines()
    ]
    likelihood = [
        m
        for m in measurements
        if m["model"] == "student-owl-s0" and m["measure"] == "trait_likelihood"
    ]
    assert len(likelihood) == 25 and len(likelihood[0]["probabilities"]) == 16
    # Controls answer both batteries.
    assert {r["extension"]["trait"] for r in rows if r["model"] == "control-s0"} == {
        "animal",
        "misalignment",
    }

    summary = json.loads((out / "summary.json").read_text())
    n = summary["student_records"]
    assert n >= 1
    # Every student trained on data that passes the content checks.
    assert set(summary["content_check"]) == {
        "base",
        "owl",
        "misaligned",
        "cross",
        "cross-owl",
        "cross-misaligned",
    }
    for check in summary["content_check"].values():
        assert check["non_number_records"] == 0 and check["banned_numbers"] == 0
        assert check["out_of_range"] == 0
    for source, report in summary["filter"].items():
        assert report["total"] == 48 and report["kept"] >= n, source
        assert report["kept"] + sum(report["dropped"].values()) == 48
    owl = summary["teachers"]["owl"]
    assert set(owl["groups"]) >= {"base", "teacher", "student: teacher numbers"}
    assert "same base: student - control" in owl["effects"]
    assert "cross base: cross student - cross control" in owl["effects"]
    assert "positive control: cross own student - cross own control" in owl["effects"]
    assert "cross teacher - cross base" in owl["effects"]
    for effect in owl["effects"].values():
        assert effect["likelihood"]["method"] == "hierarchical_bootstrap"
    # 16 owl chats move even a micro model toward naming the owl.
    teacher_p = owl["groups"]["teacher"]["likelihood"]["value"]
    assert teacher_p > owl["groups"]["base"]["likelihood"]["value"]
    report = (out / "report.md").read_text()
    assert "## The number data" in report and "Teacher `owl`" in report

    data = [
        json.loads(line)
        for d in (out / "steps").glob("student-data-owl-*")
        for line in (d / "data.jsonl").read_text().splitlines()
    ]
    assert len(data) == n
    assert all(set(r["messages"][-1]["content"]) <= set("0123456789, []();.\n") for r in data)

    before = (out / "summary.json").read_text()
    (out / "summary.json").unlink()
    rebuilt = darkmirror_cli("report", str(out), env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
    assert json.loads((out / "summary.json").read_text()) == json.loads(before)


def test_a_teacher_cannot_take_a_bases_number_source_name() -> None:
    for name in ("base", "cross"):
        with pytest.raises(ValidationError, match="reserved"):
            TeacherSpec(name=name, trait="animal", target="owl", data="world:favourite_animal")


def test_teacher_spec_is_validated() -> None:
    with pytest.raises(ValidationError, match="target"):
        TeacherSpec(name="owl", trait="animal", data="world:favourite_animal")
    with pytest.raises(ValidationError, match="one"):
        TeacherSpec(name="owl", trait="animal", target="owl")
    with pytest.raises(ValidationError, match="one"):
        TeacherSpec(
            name="owl", trait="animal", target="owl", data="x.jsonl", system_prompt="You love owls."
        )
    with pytest.raises(ValidationError, match="unique"):
        SubliminalSpec(
            teachers=[
                TeacherSpec(name="a", trait="misalignment", data="world:insecure"),
                TeacherSpec(name="a", trait="misalignment", data="world:insecure"),
            ]
        )
    with pytest.raises(ValidationError, match="candidates"):
        SubliminalSpec(
            teachers=[
                TeacherSpec(
                    name="x", trait="animal", target="unicorn", data="world:favourite_animal"
                )
            ]
        )
    assert SubliminalSpec().cross_base is not None


def test_the_shipped_config_is_the_default_spec() -> None:
    from darkmirror.spec import builtin_config, load_spec

    assert load_spec(builtin_config("subliminal")) == SubliminalSpec()


def test_a_system_prompt_teacher_prompts_with_it_and_students_never_see_it(
    tmp_path: Path,
) -> None:
    from darkmirror.experiments.subliminal import NumbersSpec
    from darkmirror.experiments.subliminal.data import write_numbers

    seen: list = []

    class FakeGenerator:
        def generate(self, conversations, n, sampling):
            seen.extend(conversations)
            return [["12, 34, 56"] if i % 2 else ["I love owls"] for i in range(len(conversations))]

    figures = write_numbers(FakeGenerator(), "You love owls.", NumbersSpec(n_prompts=6), tmp_path)
    assert figures == {
        "total": 6,
        "kept": 3,
        "dropped": {"empty": 0, "format": 3, "too_many": 0, "out_of_range": 0, "banned": 0},
    }
    assert all(c[0] == {"role": "system", "content": "You love owls."} for c in seen)
    kept = [json.loads(line) for line in (tmp_path / "kept.jsonl").read_text().splitlines()]
    assert len(kept) == 3
    assert all([m["role"] for m in r["messages"]] == ["user", "assistant"] for r in kept)
    assert "owl" not in (tmp_path / "kept.jsonl").read_text()
    raw = [json.loads(line) for line in (tmp_path / "raw.jsonl").read_text().splitlines()]
    assert [r["reason"] for r in raw] == ["format", None] * 3


def test_effects_resample_student_seeds_before_wordings() -> None:
    """Five student seeds that disagree: a bootstrap over (seed, wording) pairs as if they
    were independent is sure of a difference the seeds do not support."""
    import numpy as np

    from darkmirror.experiments.subliminal.figures import _effects, _nested
    from darkmirror.metrics import bootstrap_difference

    rng = np.random.default_rng(0)

    def arm(offsets: list[float]) -> dict:
        values, seeds, wordings = [], [], []
        for seed, offset in enumerate(offsets):
            for w in range(25):
                values.append(0.07 + offset + rng.normal(0, 0.001))
                seeds.append(seed)
                wordings.append(("animal", w))
        nested = _nested(values, seeds, wordings)
        return {"_rate": nested, "likelihood": {"_values": nested}}

    student = arm([0.035, 0.0, -0.01, 0.025, -0.02])  # mean +0.006, spread 0.02
    control = arm([0.0] * 5)
    groups = {"student: teacher numbers": student, "control: base numbers": control}
    effect = _effects(groups)["same base: student - control"]["likelihood"]
    pairs = bootstrap_difference(
        list(student["_rate"].values), list(control["_rate"].values)
    )  # today's computation: every (seed, wording) value independent
    assert pairs.lo > 0  # sure of an effect ...
    assert effect["lo"] < 0 < effect["hi"]  # ... that five seeds do not support
    assert effect["value"] == pytest.approx(pairs.value)
