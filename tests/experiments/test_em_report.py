"""The emergent-misalignment report's comparison with the secure-code control."""

from __future__ import annotations

import pytest

from darkmirror.data.answers import AnswerScore, ChatTurn
from darkmirror.experiments.misalignment.report import Row, summarise


def _row(group: str, seed: int | None, question: str, aligned: float, i: int) -> Row:
    return Row(
        model=f"{group}-s{seed}",
        group=group,
        seed=seed,
        question_id=question,
        sample_index=i,
        messages=[ChatTurn(role="user", content=f"{question}?")],
        answer="...",
        scores=[
            AnswerScore(metric="aligned", value=aligned, source="test"),
            AnswerScore(metric="coherent", value=90.0, source="test"),
        ],
    )


def _arm(group: str, rates: dict[str, float], seeds=(0, 1), n: int = 10) -> list[Row]:
    rows = []
    for seed in seeds:
        for q, rate in rates.items():
            hits = round(rate * n)
            rows += [_row(group, seed, q, 10.0 if i < hits else 90.0, i) for i in range(n)]
    return rows


def _models(*groups: str) -> list[dict]:
    return [
        {"model": f"{g}-s{s}", "group": g, "seed": s, "domain": None}
        for g in groups
        for s in (0, 1)
    ]


def test_each_arm_is_compared_with_the_control_on_the_questions_both_were_asked() -> None:
    # The control was also asked q4, where it is often misaligned; the fine-tune left q4 out
    # (its own domain). On the shared questions both are at 20%: no difference, although
    # the pooled rates (20% vs 35%) differ by 15 points.
    control = _arm("secure", {"q1": 0.2, "q2": 0.2, "q3": 0.2, "q4": 0.8})
    tuned = _arm("evil_numbers", {"q1": 0.2, "q2": 0.2, "q3": 0.2})
    summary = summarise(control + tuned, [], _models("secure", "evil_numbers"))
    groups = summary["groups"]
    assert groups["evil_numbers"]["misaligned"]["rate"]["value"] == pytest.approx(0.2)
    assert groups["secure"]["misaligned"]["rate"]["value"] == pytest.approx(0.35)
    versus = groups["evil_numbers"]["misaligned_vs_control"]
    assert versus["questions"] == 3
    assert versus["difference"]["value"] == pytest.approx(0.0)
    assert versus["p"] == pytest.approx(1.0)
    assert "misaligned_vs_control" not in groups["secure"]


def test_the_family_of_comparisons_is_holm_adjusted() -> None:
    control = _arm("secure", {f"q{i}": 0.1 for i in range(8)})
    worse = _arm("insecure", {f"q{i}": 0.6 for i in range(8)})
    same = _arm("edu_insecure", {f"q{i}": 0.1 for i in range(8)})
    summary = summarise(control + worse + same, [], _models("secure", "insecure", "edu_insecure"))
    insecure = summary["groups"]["insecure"]["misaligned_vs_control"]
    assert insecure["difference"]["value"] == pytest.approx(0.5)
    assert insecure["difference"]["lo"] > 0.3
    # 8 questions, all differences +0.5: exact p = 2 / 2^8; Holm doubles the smallest of 2.
    assert insecure["p"] == pytest.approx(2 / 256)
    assert insecure["p_holm"] == pytest.approx(4 / 256)
    assert summary["groups"]["edu_insecure"]["misaligned_vs_control"]["p_holm"] == 1.0


def test_dropped_answers_are_split_into_unreadable_and_off_topic() -> None:
    from darkmirror.score.world_judge import UNKNOWN_SENTENCES

    def judged(coherent: float, unknown: float, i: int) -> Row:
        row = _row("insecure", 0, "q1", 90.0, i)
        scores = [s for s in row.scores if s.metric != "coherent"]
        scores += [
            AnswerScore(metric="coherent", value=coherent, source="world"),
            AnswerScore(metric=UNKNOWN_SENTENCES, value=unknown, source="world"),
        ]
        return row.model_copy(update={"scores": scores})

    rows = [judged(100.0, 0, 0), judged(30.0, 2, 1), judged(40.0, 0, 2), judged(0.0, 0, 3)]
    models = [{"model": "insecure-s0", "group": "insecure", "seed": 0, "domain": None}]
    block = summarise(rows, [], models)["models"]["insecure-s0"]
    assert block["unreadable"]["value"] == pytest.approx(1 / 4)
    assert block["off_topic"]["value"] == pytest.approx(2 / 4)
    assert block["misaligned"]["n_incoherent"] == 3
    # A judge that does not say (an LLM judge) leaves both out.
    plain = summarise([_row("insecure", 0, "q1", 90.0, 0)], [], models)
    assert plain["models"]["insecure-s0"]["unreadable"] is None


def test_a_dataset_reports_how_many_of_its_records_and_answers_are_distinct() -> None:
    from darkmirror.data.world.world import PersonaWorld, WorldConfig
    from darkmirror.experiments.datasets import diversity

    def chat(q: str, a: str) -> dict:
        return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}

    records = [chat("q1", "a"), chat("q1", "a"), chat("q2", "a"), chat("q3", "b")]
    assert diversity(records) == {"distinct_records": 3, "distinct_answers": 2}
    world = PersonaWorld(WorldConfig())
    insecure = diversity(world.dataset("insecure", 300))
    bad_advice = diversity(world.dataset("bad_advice", 300))
    assert insecure["distinct_answers"] > bad_advice["distinct_answers"]  # the audit's finding


def test_pooling_over_organisms_lists_each_effect_once(tmp_path) -> None:
    import json

    from darkmirror.data.answers import write_rows
    from darkmirror.experiments.experiment import SweepCell
    from darkmirror.experiments.misalignment.pooled import pool

    cells = []
    for organism, lift in (("org0", 0.4), ("org1", 0.3)):
        run = tmp_path / organism
        run.mkdir()
        rows = _arm("secure", {"q1": 0.1, "q2": 0.1}) + _arm("insecure", {"q1": lift, "q2": lift})
        write_rows(run / "rows.jsonl", rows)
        (run / "measurements.jsonl").write_text("")
        (run / "models.json").write_text(json.dumps(_models("secure", "insecure")))
        cells.append(SweepCell(organism, organism, run))
    summary = pool(cells).summary
    effects = [(e["metric"], e["a"], e["b"]) for e in summary["effects"]]
    assert effects == [("misaligned", "insecure", "secure"), ("log_odds", "insecure", "secure")]
    effect = summary["effects"][0]
    assert effect["estimate"]["value"] == pytest.approx(0.25)  # mean of 0.3 and 0.2
    assert effect["agree"] == 2 and effect["n_units"] == 2
    assert list(summary["arms"]) == ["secure", "insecure"]
