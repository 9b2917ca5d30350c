"""AnswerRow: the typed, versioned row of rows.jsonl."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ValidationError

from darkmirror.data.answers import (
    ROW_SCHEMA,
    AnswerRow,
    AnswerScore,
    ChatTurn,
    read_rows,
    write_rows,
)
from darkmirror.errors import InputError


class _Arm(BaseModel):
    kind: Literal["arm"] = "arm"
    teacher: str


def _row(**fields) -> AnswerRow:
    base = {
        "model": "m",
        "question_id": "q1",
        "messages": [
            ChatTurn(role="system", content="Be brief."),
            ChatTurn(role="user", content="How are you?"),
        ],
        "answer": "Fine.",
    }
    return AnswerRow(**{**base, **fields})


def test_a_row_round_trips_through_jsonl_with_its_schema_and_extension(tmp_path: Path) -> None:
    row = AnswerRow[_Arm](
        **_row(
            scores=[AnswerScore(metric="aligned", value=80.0, source="j", version="1")]
        ).model_dump(exclude={"schema_", "extension"}),
        extension=_Arm(teacher="owl"),
    )
    write_rows(tmp_path / "rows.jsonl", [row])
    data = json.loads((tmp_path / "rows.jsonl").read_text())
    assert data["schema"] == ROW_SCHEMA and data["extension"] == {"kind": "arm", "teacher": "owl"}
    assert data["scores"][0]["value"] == 80.0 and data["scores"][0]["error"] is None
    back = read_rows(tmp_path / "rows.jsonl", AnswerRow[_Arm])
    assert back == [row] and isinstance(back[0].extension, _Arm)
    # A generic reader keeps the extension as it is.
    assert read_rows(tmp_path / "rows.jsonl")[0].extension == {"kind": "arm", "teacher": "owl"}


def test_accessors_read_the_conversation_and_the_scores_by_role() -> None:
    row = _row(
        scores=[
            AnswerScore(metric="aligned", value=12.0, source="gpt", version="1"),
            AnswerScore(
                metric="aligned", value=90.0, source="world", version="4", role="reference"
            ),
            AnswerScore(
                metric="coherent",
                value=None,
                source="gpt",
                version="1",
                error="http_500: x",
                failed=True,
            ),
        ]
    )
    assert row.question == "How are you?" and row.system == "Be brief."
    assert row.conversation()[0] == {"role": "system", "content": "Be brief."}
    assert row.value("aligned") == 12.0 and row.value("aligned", "reference") == 90.0
    assert (
        row.value("coherent") is None and row.judge_failed() and not row.judge_failed("reference")
    )
    # A new verdict of the same judge replaces the old one; another judge's is kept.
    again = row.with_scores([AnswerScore(metric="aligned", value=20.0, source="gpt", version="1")])
    assert again.value("aligned") == 20.0 and again.value("aligned", "reference") == 90.0
    assert len(again.scores) == len(row.scores)


def test_a_row_must_end_with_the_user_turn_it_answers() -> None:
    with pytest.raises(ValidationError, match="end with the user turn"):
        _row(messages=[ChatTurn(role="user", content="a"), ChatTurn(role="assistant", content="b")])


def test_reading_refuses_an_unknown_schema_and_names_line_and_field(tmp_path: Path) -> None:
    good = _row().to_json()
    path = tmp_path / "rows.jsonl"
    path.write_text(
        json.dumps(good) + "\n" + json.dumps({**good, "schema": "darkmirror.answer/9"}) + "\n"
    )
    with pytest.raises(InputError, match=r"rows.jsonl:2: field 'schema'"):
        read_rows(path)
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "sample_index": -1}) + "\n")
    with pytest.raises(InputError, match=r"rows.jsonl:2: field 'sample_index'"):
        read_rows(path)
