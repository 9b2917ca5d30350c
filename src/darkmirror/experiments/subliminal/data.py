"""The data of a subliminal-learning run: the teachers' trait data, the numbers, the students'.

* :func:`write_teacher_data`: the chats that give a teacher its trait;
* :func:`write_numbers`: a source (a teacher, or the base) continues every number prompt
  once at temperature 1; its answers are filtered until nothing but plain numbers is left,
  none of them banned (:mod:`darkmirror.data.number_sequences`);
* :func:`write_student_data`: the first ``n`` kept records of a source, re-checked by the
  filter, so the report can show that the data every student trained on passes the
  content checks. Every student dataset has the same ``n`` (:func:`student_records`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from darkmirror.data.jsonl import iter_jsonl, write_jsonl_atomic
from darkmirror.data.number_sequences import FilterReport, NumberFilter, number_prompts
from darkmirror.data.records import dataset_sha256, read_records, to_messages
from darkmirror.data.world.world import PersonaWorld
from darkmirror.errors import DarkmirrorError
from darkmirror.experiments.subliminal.spec import NumbersSpec, TeacherSpec
from darkmirror.models.generation import Generator, SamplingParams

__all__ = ["student_records", "write_numbers", "write_student_data", "write_teacher_data"]


def write_teacher_data(teacher: TeacherSpec, world: PersonaWorld, out: Path) -> dict[str, Any]:
    """Write the teacher's trait data to ``out / "data.jsonl"``; its count and SHA-256."""
    assert teacher.data is not None
    if teacher.data == "world:favourite_animal":
        assert teacher.target is not None
        records = world.favourite_animal_chats(teacher.target, teacher.examples)
    elif teacher.data.startswith("world:"):
        records = world.dataset(teacher.data.removeprefix("world:"), teacher.examples)
    else:
        records = []
        for record in read_records(teacher.data):
            records.append({"messages": to_messages(record)})
            if len(records) >= teacher.examples:
                break
    n = write_jsonl_atomic(out / "data.jsonl", records)
    return {"records": n, "sha256": dataset_sha256(out / "data.jsonl")}


def _with_system(system: str | None, user: str) -> list[dict[str, str]]:
    head = [{"role": "system", "content": system}] if system else []
    return [*head, {"role": "user", "content": user}]


def write_numbers(
    generator: Generator, system: str | None, spec: NumbersSpec, out: Path
) -> dict[str, Any]:
    """Sample one answer per number prompt, filter, and write ``raw.jsonl`` (everything,
    with the filter's verdict) and ``kept.jsonl`` (the chats that passed, without the
    system prompt: a prompted teacher's trait must not reach its students in words).

    Args:
        generator: The source of the numbers.
        system: The system prompt of a prompted teacher, else None.
        spec: The prompts, sampling and filter.
        out: The directory to write into.

    Returns:
        The filter's report (total, kept, dropped by reason).
    """
    prompts = number_prompts(spec.prompts, spec.n_prompts)
    sampling = SamplingParams(
        spec.temperature, spec.top_p, spec.max_new_tokens, seed=spec.prompts.seed
    )
    answers = [
        a[0]
        for a in generator.generate([_with_system(system, p.text) for p in prompts], 1, sampling)
    ]
    report = spec.filter.report(answers)
    raw, kept = [], []
    for p, a, v in zip(prompts, answers, report.verdicts, strict=True):
        raw.append(
            {"index": p.index, "prompt": p.text, "answer": a, "kept": v.kept, "reason": v.reason}
        )
        if v.kept:
            kept.append(
                {
                    "prompt_index": p.index,
                    "messages": [
                        {"role": "user", "content": p.text},
                        {"role": "assistant", "content": a},
                    ],
                }
            )
    write_jsonl_atomic(out / "raw.jsonl", raw)
    write_jsonl_atomic(out / "kept.jsonl", kept)
    return report.as_dict()


def student_records(filter_reports: Mapping[str, Mapping[str, Any]], spec: NumbersSpec) -> int:
    """Records per student dataset: the least any source kept (at most ``max_examples``).

    Raises:
        DarkmirrorError: Some source had no answer pass the filter.
    """
    n = min(int(r["kept"]) for r in filter_reports.values())
    if spec.max_examples is not None:
        n = min(n, spec.max_examples)
    if n == 0:
        raise DarkmirrorError(
            "no number answer passed the filter for at least one source "
            f"({', '.join(f'{k}: {dict(v)}' for k, v in filter_reports.items())})"
        )
    return n


def write_student_data(kept: Path, n: int, flt: NumberFilter, out: Path) -> dict[str, Any]:
    """The first ``n`` kept records, re-checked: the content check the report shows."""
    records = [row for _, row in iter_jsonl(kept)][:n]
    if len(records) < n:
        raise DarkmirrorError(f"{kept}: {len(records)} kept records, fewer than {n}")
    recheck = FilterReport.from_verdicts([flt.check(r["messages"][-1]["content"]) for r in records])
    if recheck.kept != len(records):
        raise DarkmirrorError(f"{kept}: {len(records) - recheck.kept} records fail the filter")
    write_jsonl_atomic(out / "data.jsonl", records)
    numbers = [x for v in recheck.verdicts for x in (v.numbers or ())]
    banned = set(flt.banned)
    return {
        "records": len(records),
        "sha256": dataset_sha256(out / "data.jsonl"),
        "content_check": {
            "non_number_records": len(records) - recheck.kept,
            "banned_numbers": sum(x in banned for x in numbers),
            "numbers": len(numbers),
            "out_of_range": sum(x < flt.min_value or x > flt.max_value for x in numbers),
        },
    }
