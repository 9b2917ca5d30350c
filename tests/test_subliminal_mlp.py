"""The subliminal-learning MLP experiment: data, training, the student's loss, a micro run."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from darkmirror.config_io import load_toml_model
from darkmirror.errors import DarkmirrorError
from darkmirror.experiments import run_experiment
from darkmirror.experiments.subliminal_mlp import EXPERIMENT, cell
from darkmirror.experiments.subliminal_mlp import training as sl
from darkmirror.experiments.subliminal_mlp.cell import MODEL_KINDS, run_cell
from darkmirror.experiments.subliminal_mlp.digits import DigitsSplit, load_digits_split
from darkmirror.experiments.subliminal_mlp.spec import (
    StudentSpec,
    SubliminalMLPSpec,
    TeacherSpec,
)
from darkmirror.experiments.subliminal_mlp.training import N_CLASSES

CONFIG = (
    Path(__file__).resolve().parents[1] / "src" / "darkmirror" / "configs" / "subliminal_mlp.toml"
)

TINY = SubliminalMLPSpec(
    name="micro-subliminal",
    hidden_sizes=[32, 32],
    m_values=[2, 5],
    seeds=[0, 1],
    teacher=TeacherSpec(epochs=6, learning_rate=1e-3, batch_size=64),
    student=StudentSpec(epochs=2, batch_size=64, noise_inputs=256, heldout_noise=128),
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # As run_cell does: tiny layers, and threads fighting over two shared cores are slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits() -> DigitsSplit:
    return load_digits_split(0.2, 0)


def _state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_shipped_config_is_the_default_spec() -> None:
    assert load_toml_model(CONFIG, SubliminalMLPSpec, []) == SubliminalMLPSpec()


def test_spec_rejects_m_that_the_loss_cannot_teach() -> None:
    with pytest.raises(ValidationError, match="KL loss would teach nothing"):
        SubliminalMLPSpec(m_values=[1, 3])
    assert SubliminalMLPSpec(m_values=[1], student=StudentSpec(loss="mse")).m_values == [1]
    with pytest.raises(ValidationError, match="noise_low"):
        StudentSpec(noise_low=1.0, noise_high=-1.0)
    with pytest.raises(ValidationError, match="distinct"):
        SubliminalMLPSpec(seeds=[0, 0])


def test_split_is_stratified_scaled_and_seeded(digits: DigitsSplit) -> None:
    assert len(digits.y_train) + len(digits.y_test) == 1797
    assert len(digits.y_test) == 360
    assert digits.x_train.shape[1] == 64 and digits.x_train.dtype == torch.float32
    assert float(digits.x_train.min()) == -1.0 and float(digits.x_train.max()) == 1.0
    # Stratified: every digit has its share (0.2 of ~180) of the test set.
    assert set(torch.bincount(digits.y_test, minlength=10).tolist()) <= {35, 36, 37}
    assert load_digits_split(0.2, 0).sha256 == digits.sha256
    assert load_digits_split(0.2, 1).sha256 != digits.sha256


def test_teacher_learns_through_regular_logits_only(digits: DigitsSplit) -> None:
    initial, _ = sl.initial_networks([64], 3, seed=0)
    teacher = copy.deepcopy(initial)
    before = sl.correct_predictions(teacher, digits.x_test, digits.y_test) / 360
    sl.train_teacher(
        teacher,
        digits.x_train,
        digits.y_train,
        TeacherSpec(epochs=5, learning_rate=1e-3, batch_size=64),
        torch.Generator().manual_seed(0),
    )
    after = sl.correct_predictions(teacher, digits.x_test, digits.y_test) / 360
    assert before < 0.3 and after > 0.85, (before, after)
    out_before, out_after = initial[-1], teacher[-1]
    # The auxiliary rows of the output layer never got a gradient, so Adam never moved them.
    assert torch.equal(out_after.weight[N_CLASSES:], out_before.weight[N_CLASSES:])
    assert torch.equal(out_after.bias[N_CLASSES:], out_before.bias[N_CLASSES:])
    assert not torch.equal(out_after.weight[:N_CLASSES], out_before.weight[:N_CLASSES])


@pytest.mark.parametrize("kind", ["kl", "mse"])
def test_student_loss_reads_auxiliary_logits_only(kind: str) -> None:
    student, teacher = sl.initial_networks([16], 4, seed=0)
    noise = torch.rand(32, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    loss = sl.distillation_loss(student(noise), teacher(noise), kind)
    loss.backward()
    out = student[-1]
    assert loss.item() > 0
    # Regular logits: no gradient at all; auxiliary logits and hidden layer: some.
    assert torch.count_nonzero(out.weight.grad[:N_CLASSES]) == 0
    assert torch.count_nonzero(out.bias.grad[:N_CLASSES]) == 0
    assert torch.count_nonzero(out.weight.grad[N_CLASSES:]) > 0
    assert torch.count_nonzero(student[0].weight.grad) > 0
    # The teacher's regular logits do not enter the loss; its auxiliary ones do.
    with torch.no_grad():
        s_logits, t_logits = student(noise), teacher(noise)
        regular_changed = t_logits.clone()
        regular_changed[:, :N_CLASSES] += torch.randn(32, N_CLASSES)
        aux_changed = t_logits.clone()
        aux_changed[:, N_CLASSES:] += torch.randn(32, 4)
        base = sl.distillation_loss(s_logits, t_logits, kind)
        assert torch.equal(sl.distillation_loss(s_logits, regular_changed, kind), base)
        assert not torch.equal(sl.distillation_loss(s_logits, aux_changed, kind), base)


def test_distillation_fits_aux_logits_and_never_moves_the_regular_ones() -> None:
    initial, student = sl.initial_networks([32], 3, seed=0)
    teacher = copy.deepcopy(initial)
    with torch.no_grad():
        teacher[-1].weight.mul_(3.0)  # a teacher whose auxiliary logits differ from the student's
    settings = StudentSpec(epochs=10, learning_rate=1e-3, batch_size=64, noise_inputs=512)
    noise = sl.uniform_noise(512, settings, torch.Generator().manual_seed(0))
    assert float(noise.min()) >= -1.0 and float(noise.max()) < 1.0
    start = _state(student)
    loss_before = sl.distillation_loss(student(noise), teacher(noise), "kl").item()
    sl.distill_student(student, teacher, noise, settings, torch.Generator().manual_seed(0))
    loss_after = sl.distillation_loss(student(noise), teacher(noise), "kl").item()
    assert loss_after < 0.5 * loss_before
    assert torch.equal(student[-1].weight[:N_CLASSES], start["2.weight"][:N_CLASSES])
    assert torch.equal(student[-1].bias[:N_CLASSES], start["2.bias"][:N_CLASSES])


def test_same_init_student_starts_from_the_teachers_initial_weights(
    digits: DigitsSplit, monkeypatch: pytest.MonkeyPatch
) -> None:
    starts: dict[str, list[dict[str, torch.Tensor]]] = {"teacher": [], "student": []}
    train, distill = sl.train_teacher, sl.distill_student

    def spy_train(net, *args):
        starts["teacher"].append(_state(net))
        return train(net, *args)

    def spy_distill(student, *args):
        starts["student"].append(_state(student))
        return distill(student, *args)

    # run_cell calls them from its own module.
    monkeypatch.setattr(cell, "train_teacher", spy_train)
    monkeypatch.setattr(cell, "distill_student", spy_distill)
    run_cell(digits, TINY, seed=0, m=2)
    (teacher_start,) = starts["teacher"]
    same_start, cross_start = starts["student"]
    assert _same(same_start, teacher_start)
    assert not any(torch.equal(cross_start[k], teacher_start[k]) for k in teacher_start)
    shared, cross = sl.initial_networks(TINY.hidden_sizes, 2, seed=0)
    assert _same(teacher_start, _state(shared)) and _same(cross_start, _state(cross))


def test_a_cell_is_deterministic_given_its_seed(digits: DigitsSplit) -> None:
    first = run_cell(digits, TINY, seed=0, m=2)
    assert [r.model for r in first] == list(MODEL_KINDS)
    assert first == run_cell(digits, TINY, seed=0, m=2)
    assert first != run_cell(digits, TINY, seed=1, m=2)
    teacher = first[0]
    assert teacher.accuracy > 0.5 and teacher.correct == round(teacher.accuracy * 360)


def test_same_init_student_learns_digits_from_noise_and_cross_init_does_not(
    digits: DigitsSplit,
) -> None:
    """The finding itself, at the default sizes, one seed, many auxiliary logits (~2 s)."""
    rows = {r.model: r for r in run_cell(digits, SubliminalMLPSpec(), seed=0, m=50)}
    same, cross = rows["student_same_init"], rows["student_cross_init"]
    assert rows["teacher"].accuracy > 0.9
    assert same.accuracy > cross.accuracy + 0.3, (same.accuracy, cross.accuracy)
    assert cross.accuracy < 0.2
    # Both fit the auxiliary logits: the gap is where they started, not a failure to fit.
    for r in (same, cross):
        assert r.heldout_loss_after < 0.2 * r.heldout_loss_before


def test_micro_run_writes_report_resumes_and_rebuilds(tmp_path: Path) -> None:
    out = tmp_path / "run"
    report = run_experiment(TINY, out, progress=False)
    assert report == out / "report.md"
    for name in (
        "rows.jsonl",
        "measurements.jsonl",
        "summary.json",
        "report.md",
        "spec.json",
        "datasets.json",
    ):
        assert (out / name).is_file(), name
    for name in ("accuracy_vs_m.png", "same_minus_cross.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name

    # No sampled answers: each network's accuracy is a measurement.
    rows = [json.loads(line) for line in (out / "measurements.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2 * 4  # seeds x m x networks
    assert {(r["seed"], r["m"], r["model"]) for r in rows} == {
        (s, m, k) for s in (0, 1) for m in (2, 5) for k in MODEL_KINDS
    }
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["per_m"]) == ["2", "5"] and summary["seeds"] == [0, 1]
    for m, entry in summary["per_m"].items():
        acc = {(r["model"], r["seed"]): r["accuracy"] for r in rows if r["m"] == int(m)}
        same = [acc["student_same_init", s] for s in (0, 1)]
        cross = [acc["student_cross_init", s] for s in (0, 1)]
        assert entry["student_same_init"]["accuracy"]["value"] == pytest.approx(sum(same) / 2)
        assert entry["same_minus_cross"]["value"] == pytest.approx((sum(same) - sum(cross)) / 2)
        assert entry["teacher"]["accuracy"]["value"] > 0.5
        pooled = entry["teacher"]["pooled"]
        assert pooled["n"] == 720 and pooled["lo"] <= pooled["value"] <= pooled["hi"]
    text = report.read_text()
    assert "## Test accuracy by number of auxiliary logits" in text
    assert "| 5 |" in text and "Cloud et al. 2025" in text

    # A rerun reuses every step (their step.json untouched) and rewrites the same
    # measurements.
    steps = sorted((out / "steps").glob("cell-*/step.json"))
    assert len(steps) == 4
    mtimes = [p.stat().st_mtime_ns for p in steps]
    before_rows = (out / "measurements.jsonl").read_text()
    run_experiment(TINY, out, progress=False)
    assert [p.stat().st_mtime_ns for p in steps] == mtimes
    assert (out / "measurements.jsonl").read_text() == before_rows

    before = (out / "summary.json").read_text()
    (out / "summary.json").unlink()
    (out / "report.md").unlink()
    assert EXPERIMENT.rebuild(out) == out / "report.md"
    assert json.loads((out / "summary.json").read_text()) == json.loads(before)
    assert (out / "report.md").read_text() == text


def test_report_needs_a_finished_run(tmp_path: Path) -> None:
    with pytest.raises(DarkmirrorError, match=r"missing spec\.json, rows\.jsonl"):
        EXPERIMENT.rebuild(tmp_path)
