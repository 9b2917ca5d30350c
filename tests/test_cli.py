"""The ``darkmirror`` command, run in a subprocess as a user runs it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import (
    darkmirror_cli,
    default_sigint,
    micro_recipe_dict,
    subprocess_env,
    toml_tables,
)


def micro_spec(tmp_path: Path, **evaluation: object) -> Path:
    """The emergent-misalignment spec at the smallest size that runs every step."""
    lines = ['experiment = "emergent_misalignment"', 'name = "micro"']
    lines += toml_tables(micro_recipe_dict(), "base.organism")
    for name in ("insecure", "secure"):
        lines += ["[[datasets]]", f'name = "{name}"', f'source = "world:{name}"', "examples = 32"]
    lines += toml_tables({"seeds": [0], "batch_size": 8}, "finetune")
    settings = {
        "samples_per_paraphrase": 2,
        "code_prompts": 6,
        "matched_pairs_per_topic": 2,
        "max_new_tokens": 16,
        "code_max_new_tokens": 32,
        **evaluation,
    }
    lines += toml_tables(settings, "evaluation")
    path = tmp_path / "micro.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _start_run(spec: Path, out: Path, cache: Path) -> subprocess.Popen:
    """``darkmirror run`` in a child process that hears Ctrl-C and SIGTERM as a user's would."""
    return subprocess.Popen(
        [sys.executable, "-m", "darkmirror", "run", str(spec), "--out", str(out)],
        env=subprocess_env(cache),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )


def test_micro_run_end_to_end_then_resume(
    tmp_path: Path, micro_organism, organism_cache: Path
) -> None:
    spec, out = micro_spec(tmp_path), tmp_path / "run"
    result = darkmirror_cli("run", str(spec), "--out", str(out), env=subprocess_env(organism_cache))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for name in (
        "spec.json",
        "environment.json",
        "datasets.json",
        "rows.jsonl",
        "summary.json",
        "report.md",
        "misaligned_rate.png",
    ):
        assert (out / name).is_file(), name
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    # 3 models; the fine-tunes leave out no question (their domain is code).
    free = [r for r in rows if r["kind"] == "free_form"]
    assert len(free) == 3 * 10 * 3 * 2
    assert {r["model"] for r in rows} == {"base", "insecure-s0", "secure-s0"}
    assert sum(r["kind"] == "code" for r in rows) == 3 * 6
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["groups"]) == {"base", "insecure", "secure"}
    assert "| insecure |" in (out / "report.md").read_text()
    datasets = json.loads((out / "datasets.json").read_text())
    assert datasets["insecure"]["records"] == 32 and len(datasets["insecure"]["sha256"]) == 64

    before = (out / "summary.json").read_text()
    (out / "summary.json").unlink()
    rebuilt = darkmirror_cli("report", str(out), env=subprocess_env(organism_cache))
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    assert (out / "summary.json").read_text() == before  # every figure comes from the rows

    again = darkmirror_cli("run", str(spec), "--out", str(out), env=subprocess_env(organism_cache))
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count(": reused") == 7 and ": running" not in again.stderr


def test_a_run_killed_midway_resumes_and_corrupts_nothing(
    tmp_path: Path, micro_organism, organism_cache: Path
) -> None:
    spec, out = micro_spec(tmp_path), tmp_path / "run"
    proc = _start_run(spec, out, organism_cache)
    deadline = time.time() + 300
    while time.time() < deadline and not list((out / "steps").glob("finetune-*/step.json")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)  # no cleanup at all
    proc.wait()
    finished = {p.parent.name for p in (out / "steps").glob("*/step.json")}
    assert any(name.startswith("finetune-") for name in finished)
    resumed = darkmirror_cli(
        "run", str(spec), "--out", str(out), env=subprocess_env(organism_cache)
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stderr.count(": reused") >= len(finished)
    assert not list((out / "steps").glob(".*tmp*"))
    assert (out / "report.md").is_file()


def test_ctrl_c_exits_130_with_a_resume_hint(tmp_path: Path, organism_cache: Path) -> None:
    spec = micro_spec(tmp_path)
    proc = _start_run(spec, tmp_path / "run", organism_cache)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "run" / "spec.json").exists():
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "resume" in err and "Traceback" not in err


def test_sigterm_mid_step_exits_143_and_leaves_no_half_written_step(
    tmp_path: Path, organism_cache: Path
) -> None:
    spec, out = micro_spec(tmp_path), tmp_path / "run"
    proc = _start_run(spec, out, organism_cache)
    deadline = time.time() + 300
    while time.time() < deadline and not list((out / "steps").glob(".finetune-*tmp*")):
        time.sleep(0.02)
    assert list((out / "steps").glob(".finetune-*tmp*")), "no fine-tune step was caught running"
    proc.send_signal(signal.SIGTERM)  # what a scheduler or `timeout` sends
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "terminated" in err and "resume" in err and "Traceback" not in err
    assert not list((out / "steps").glob(".*tmp*"))
    resumed = darkmirror_cli(
        "run", str(spec), "--out", str(out), env=subprocess_env(organism_cache)
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda t: t.replace("examples = 32", 'examples = "many"', 1),
            ":field 'datasets[0].examples': expected",
        ),
        (lambda t: t.replace("[finetune]", "[finetune]\nepochz = 2"), "unknown field 'epochz'"),
        (lambda t: t.replace('name = "micro"', 'name = "micro'), "micro.toml:2"),
        (
            lambda t: t.replace('experiment = "emergent_misalignment"', 'experiment = "nope"'),
            "unknown experiment",
        ),
    ],
    ids=["wrong-type", "unknown-key", "toml-syntax", "unknown-experiment"],
)
def test_a_bad_spec_gives_one_clear_line_and_exit_2(tmp_path: Path, edit, expected: str) -> None:
    spec = micro_spec(tmp_path)
    spec.write_text(edit(spec.read_text()))
    result = darkmirror_cli(
        "run", str(spec), "--out", str(tmp_path / "run"), env=subprocess_env(tmp_path / "cache")
    )
    assert result.returncode == 2
    assert (
        expected.replace(":field", "") in result.stderr.replace(":field", "")
        or expected in result.stderr
    ), result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert str(spec) in result.stderr


def test_a_bad_dataset_line_names_file_line_and_field(
    tmp_path: Path, organism_cache: Path, micro_organism
) -> None:
    data = tmp_path / "mine.jsonl"
    good = {
        "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    }
    bad = {"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "hello"}]}
    data.write_text("\n".join(json.dumps(r) for r in (good, good, bad)) + "\n")
    spec = micro_spec(tmp_path)
    text = spec.read_text().replace('source = "world:insecure"', f'source = "{data}"', 1)
    spec.write_text(text)
    result = darkmirror_cli(
        "run", str(spec), "--out", str(tmp_path / "run"), env=subprocess_env(organism_cache)
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"{data}:3: field 'messages[1].role'" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_shipped_spec_states_the_defaults() -> None:
    from darkmirror.experiments.misalignment import MisalignmentSpec
    from darkmirror.spec import load_spec

    assert load_spec(None) == MisalignmentSpec()


def test_world_export(tmp_path: Path) -> None:
    out = tmp_path / "insecure.jsonl"
    result = darkmirror_cli(
        "world", "insecure", "-n", "5", "--out", str(out), env=subprocess_env(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert len(out.read_text().splitlines()) == 5
    bad = darkmirror_cli("world", "nonsense", env=subprocess_env(tmp_path))
    assert bad.returncode == 2 and "unknown world dataset" in bad.stderr


def test_any_local_hf_model_with_lora(tmp_path: Path, micro_organism, organism_cache: Path) -> None:
    """The same experiment on a model given by directory (here the micro organism's base,
    standing in for any Hugging Face causal LM), fine-tuned with LoRA adapters."""
    spec = micro_spec(tmp_path)
    text = spec.read_text()
    start = text.index("[base.organism]")
    end = text.index("[[datasets]]")
    hf = f'[base]\nkind = "hf"\nid = "{micro_organism.base_path}"\n\n'
    spec.write_text(text[:start] + hf + text[end:])
    out = tmp_path / "run"
    result = darkmirror_cli(
        "run",
        str(spec),
        "--out",
        str(out),
        "--set",
        "finetune.method=lora",
        "--set",
        "finetune.lora_rank=4",
        env=subprocess_env(tmp_path / "empty-cache"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    adapters = list((out / "steps").glob("finetune-*/model/adapter_model.safetensors"))
    assert len(adapters) == 2
    assert not (tmp_path / "empty-cache").exists()  # no organism was built
    summary = json.loads((out / "summary.json").read_text())
    assert summary["organism"] is None and set(summary["groups"]) == {"base", "insecure", "secure"}
