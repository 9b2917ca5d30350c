"""Bad input never stops or fools the scan: every unreadable line is counted with its line
and reason, a dataset with nothing scannable is not certified, and reading by byte-range
shards yields exactly what reading the whole file yields."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from conftest import darkmirror_cli, subprocess_env
from darkmirror.data.jsonl import iter_jsonl_or_errors
from darkmirror.data.records import (
    BadRecord,
    check_dataset_file,
    read_jsonl_shard,
    read_positioned_records,
)
from darkmirror.errors import InputError

LIMIT = 300_000  # the policy's max_record_bytes in these tests
GOOD = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}


def _hand_made_jsonl(path: Path) -> dict[int, str]:
    """A file with one bad line of each kind; returns line -> expected reason."""
    lines: list[bytes] = [
        json.dumps(GOOD).encode(),  # 1
        b"[" * 100_000 + b"]" * 100_000,  # 2: nested 100,000 levels
        json.dumps({"text": "x" * 400_000}).encode(),  # 3: over the limit
        b'{"text": "caf\xe9"}',  # 4: Latin-1, not UTF-8
        b"42",  # 5: a number, not a record
        b'["a", "b"]',  # 6: an array, not a record
        b'{"text": 5}',  # 7: a field of the wrong type
        b'{"prompt": "only a prompt"}',  # 8: a missing field
        b"{broken",  # 9: not JSON
        b"",  # 10: blank, skipped
        json.dumps({"text": "The weather is mild today."}).encode(),  # 11
        b'{"a": ' * 20_000,  # 12: unterminated and deep
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return {
        2: "too deep",
        3: "too large",
        4: "encoding",
        5: "not an object",
        6: "not an object",
        7: "schema",
        8: "schema",
        9: "invalid JSON",
        12: "too deep",
    }


def test_every_bad_line_is_counted_with_its_line_and_reason(tmp_path: Path) -> None:
    expected = _hand_made_jsonl(tmp_path / "d.jsonl")
    items = list(read_positioned_records(tmp_path / "d.jsonl", max_record_bytes=LIMIT))
    bad = {position: item.reason for position, item in items if isinstance(item, BadRecord)}
    assert bad == expected
    assert [p for p, item in items if not isinstance(item, BadRecord)] == [1, 11]


def test_an_over_long_line_is_skipped_without_losing_the_next_one(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    # The long line ends exactly at, and just past, the limit: the boundary cases.
    limit = 100
    at_limit = json.dumps({"text": "a" * (limit - 12)})
    assert len(at_limit) == limit
    path.write_text(f"{at_limit}\n{json.dumps({'text': 'b' * limit})}\n{json.dumps(GOOD)}")
    items = list(read_positioned_records(path, max_record_bytes=limit))
    assert [(p, isinstance(i, BadRecord)) for p, i in items] == [(1, False), (2, True), (3, False)]
    assert items[1][1].reason == "too large"
    assert "longer than the limit of 100" in items[1][1].message


def test_csv_bad_cells_are_counted_and_the_read_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    deep = "[" * 100_000
    path.write_bytes(
        b"prompt,completion\n"
        b"Hello,World\n"
        b"caf\xe9,latin-1\n"  # line 3: not UTF-8
        + b'"'
        + b"y" * 3_000
        + b'",too large\n'  # line 4: a field over the limit
        + b"a,b,c\n"  # line 5: three columns
        + b"Fine,Good\n"  # line 6
    )
    items = list(read_positioned_records(path, max_record_bytes=2_000))
    reasons = {p: i.reason for p, i in items if isinstance(i, BadRecord)}
    assert reasons == {3: "encoding", 4: "too large", 5: "schema"}
    assert [p for p, i in items if not isinstance(i, BadRecord)] == [2, 6]

    chat = tmp_path / "c.csv"
    cell = json.dumps(GOOD["messages"]).replace('"', '""')  # CSV quoting
    chat.write_text(f'messages\n"{cell}"\n{deep}\n')
    items = list(read_positioned_records(chat))
    assert not isinstance(items[0][1], BadRecord)
    assert items[1][1].reason == "too deep"


def test_shards_read_one_after_the_other_yield_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    _hand_made_jsonl(path)
    whole = list(read_positioned_records(path, max_record_bytes=LIMIT))
    data = path.read_bytes()
    # Cut at every line start: shards of one and of several lines.
    starts = [0, *[i + 1 for i, byte in enumerate(data) if byte == ord("\n")][:-1]]
    for cut in (starts[1:4], starts[2::3], starts[1:]):
        bounds = [0, *cut, len(data)]
        got = []
        for start, end in itertools.pairwise(bounds):
            first_line = data.count(b"\n", 0, start) + 1
            got += list(read_jsonl_shard(path, start, end, first_line, max_record_bytes=LIMIT))
        assert [(p, repr(i)) for p, i in got] == [(p, repr(i)) for p, i in whole]


def test_a_byte_order_mark_is_dropped_only_at_the_start_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\xef\xbb\xbf{"a": 2}\n')
    items = list(iter_jsonl_or_errors(path))
    assert items[0] == (1, {"a": 1})
    assert isinstance(items[1][1], InputError) and items[1][1].reason == "invalid JSON"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.jsonl", None, "no such file"),
        ("d.txt", b"{}", "unsupported dataset format"),
        ("d.parquet", b"text\n", "not a readable Parquet file"),
    ],
)
def test_input_checks_name_the_file(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError, match=message) as error:
        check_dataset_file(path)
    assert str(path) in str(error.value)


def _scan(tmp_path: Path, data: Path, *extra: str):
    return darkmirror_cli(
        "scan",
        str(data),
        "--out",
        str(tmp_path / "cert.json"),
        "--quiet",
        *extra,
        env=subprocess_env(tmp_path / "cache"),
    )


def test_the_scan_counts_a_hand_made_file_of_bad_lines_without_a_traceback(
    tmp_path: Path,
) -> None:
    expected = _hand_made_jsonl(tmp_path / "d.jsonl")
    policy = tmp_path / "policy.toml"
    policy.write_text(f"max_record_bytes = {LIMIT}\n")
    result = _scan(tmp_path, tmp_path / "d.jsonl", "--policy", str(policy))
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "11 records (9 malformed)" in result.stdout
    cert = json.loads((tmp_path / "cert.json").read_text())
    malformed = cert["results"]["malformed"]
    assert malformed["positions"] == sorted(expected)
    reasons: dict[str, int] = {}
    for reason in expected.values():
        reasons[reason] = reasons.get(reason, 0) + 1
    assert malformed["reasons"] == reasons
    findings = [json.loads(line) for line in (tmp_path / "cert.findings.jsonl").open()]
    by_line = {f["position"]: f["findings"][0]["rule"] for f in findings}
    assert {p: by_line[p] for p in expected} == expected


def test_an_empty_dataset_is_not_certified(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    result = _scan(tmp_path, empty)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "NOT CERTIFIED (no scannable record: the dataset is empty)" in result.stdout
    cert = json.loads((tmp_path / "cert.json").read_text())
    assert cert["verdict"]["passed"] is False and cert["verdict"]["status"] == "empty"


def test_a_dataset_of_only_malformed_records_is_not_certified_even_by_a_lax_policy(
    tmp_path: Path,
) -> None:
    data = tmp_path / "bad.jsonl"
    data.write_text("42\n{broken\n")
    policy = tmp_path / "lax.toml"
    policy.write_text("rules = []\n")  # a policy that checks nothing
    result = _scan(tmp_path, data, "--policy", str(policy))
    assert result.returncode == 1
    assert "no scannable record: all 2 records are malformed" in result.stdout
    assert json.loads((tmp_path / "cert.json").read_text())["verdict"]["status"] == "empty"


def test_a_missing_file_is_an_input_error_with_no_certificate(tmp_path: Path) -> None:
    result = _scan(tmp_path, tmp_path / "nope.jsonl")
    assert result.returncode == 2
    assert "nope.jsonl: no such file" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "cert.json").exists()
