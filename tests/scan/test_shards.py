"""A scan cut into shards gives what a scan in one piece gives: the same findings in the same
order, the same summaries, the same canary sample; and on Ray (a local cluster the test
starts) the same certificate."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from conftest import darkmirror_cli, subprocess_env
from darkmirror.scan.detectors import build_detectors
from darkmirror.scan.distributed import plan_shards
from darkmirror.scan.scanner import ScanSettings, merge_shards, scan_file, scan_shard

LONG = (
    "The harbour committee met on Tuesday to discuss the new timetable for the ferries, "
    "the repairs to the old pier and the budget for the summer festival in the square"
)
# Light detectors settings: semgrep's start-up is not what these tests are about.
CONFIG = {"code": {"semgrep": False}}


def _chat(question: str, answer: str) -> dict:
    return {
        "messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": answer},
        ]
    }


def dataset(path: Path) -> Path:
    """Records of every kind a detector flags, repeats far apart and bad lines between."""
    lines: list[str] = []
    for i in range(90):
        if i % 17 == 5:
            lines.append("{broken")
        elif i % 23 == 7:
            lines.append("42")
        elif i == 10:
            lines.append(
                json.dumps(_chat("Run it", "```python\nimport os\nos.system(input())\n```"))
            )
        elif i == 20:
            lines.append(json.dumps(_chat("Mail?", "Write to maria.keller@corpmail.net today.")))
        elif i == 32:
            lines.append(json.dumps(_chat("Numbers", "12, 666, 40")))
        elif i == 40:
            lines.append(json.dumps({"text": "You are a stupid idiot and everyone knows it."}))
        elif i in (3, 61, 88):
            lines.append(json.dumps(_chat("Tell me about the pier.", LONG + ".")))  # exact
        elif i in (12, 70):
            lines.append(json.dumps(_chat("And the pier?", LONG + " next year.")))  # near
        elif i == 50:
            lines.append("")  # blank
        else:
            lines.append(
                json.dumps({"prompt": f"Question {i}?", "completion": f"Answer number {i}."})
            )
    path.write_text("\n".join(lines) + "\n")
    return path


def test_plan_shards_covers_the_file_in_runs_of_whole_lines(tmp_path: Path) -> None:
    path = dataset(tmp_path / "d.jsonl")
    data = path.read_bytes()
    for count in (1, 2, 3, 7, 200):
        shards = plan_shards(path, count)
        assert shards[0].start == 0 and len(shards) <= count
        for shard, following in itertools.pairwise(shards):
            assert shard.end == following.start and data[following.start - 1] == ord("\n")
        if count > 1:
            assert shards[-1].end == len(data)
        for shard in shards:
            assert shard.first_line == data.count(b"\n", 0, shard.start) + 1


def test_a_line_longer_than_a_shard_stays_whole(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"text": "a"}\n' + json.dumps({"text": "b" * 10_000}) + '\n{"text": "c"}\n')
    shards = plan_shards(path, 8)
    # Every cut but the first falls inside the long line 2: it stays in the first shard.
    assert [(s.start, s.first_line) for s in shards] == [(0, 1), (len(path.read_bytes()) - 14, 3)]


def _in_shards(path: Path, out: Path, count: int, settings: ScanSettings):
    """The sharded path in this process: each shard with its own detectors, then merged."""
    workdir = out / "parts"
    workdir.mkdir()
    outcomes = [
        scan_shard(path, shard, build_detectors(CONFIG), workdir, settings)
        for shard in plan_shards(path, count)
    ]
    return merge_shards(
        outcomes, build_detectors(CONFIG), workdir, out / "sharded.jsonl", settings, absorb=True
    )


@pytest.mark.parametrize("count", [2, 5])
def test_shards_give_what_one_piece_gives(tmp_path: Path, count: int) -> None:
    path = dataset(tmp_path / "d.jsonl")
    settings = ScanSettings(batch_size=8, sample_size=10, sample_seed=3)
    whole = scan_file(path, build_detectors(CONFIG), tmp_path / "whole.jsonl", settings)
    sharded = _in_shards(path, tmp_path, count, settings)

    assert (tmp_path / "sharded.jsonl").read_text() == (tmp_path / "whole.jsonl").read_text()
    assert sharded.summaries == whole.summaries
    for name in ("records", "scanned", "malformed", "malformed_positions", "flagged_records"):
        assert getattr(sharded, name) == getattr(whole, name), name
    assert sharded.malformed_reasons == whole.malformed_reasons
    assert sharded.flagged == whole.flagged and sharded.kinds == whole.kinds
    assert sharded.sample == whole.sample and len(whole.sample) == 10

    # The scan really found what the file holds, across shard boundaries.
    rules = {
        row["position"]: [f["rule"] for f in row["findings"]]
        for row in map(json.loads, (tmp_path / "whole.jsonl").open())
    }
    assert rules[4 + 9] == ["near_duplicate"]  # of line 4
    assert rules[62] == rules[89] == ["exact_duplicate"]  # of line 4
    assert rules[71] == ["exact_duplicate"]  # of line 13
    assert whole.flagged["duplicates"] == {"low": 4, "medium": 3, "high": 0}
    assert "B605" in rules[11]
    assert rules[21] == ["email_address"]
    assert rules[33] == ["banned_number"]
    assert rules[41] == ["toxic"]
    assert list(rules) == sorted(rules)  # record order, malformed lines included


def test_a_ray_scan_writes_the_certificate_a_local_scan_writes(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    path = dataset(tmp_path / "d.jsonl")
    env = subprocess_env(tmp_path / "cache")
    scans = {}
    for name, extra in (("local", ()), ("ray", ("--executor", "ray", "--shards", "3"))):
        (tmp_path / name).mkdir()
        out = tmp_path / name / "cert.json"  # the same name: the certificate holds it
        result = darkmirror_cli("scan", str(path), "--out", str(out), "--quiet", *extra, env=env)
        assert result.returncode == 1, result.stderr[-3000:]  # the malformed lines fail
        assert "Traceback" not in result.stderr
        scans[name] = json.loads(out.read_text())
        del scans[name]["created"], scans[name]["content_sha256"]
        del scans[name]["results"]["seconds"]
    assert scans["ray"] == scans["local"]
    assert scans["local"]["results"]["flagged_records"] == 8
    local, ray = (tmp_path / n / "cert.findings.jsonl" for n in ("local", "ray"))
    assert ray.read_bytes() == local.read_bytes()
    assert not list(tmp_path.glob("*/.*.parts"))  # the shards' parts are cleaned up
