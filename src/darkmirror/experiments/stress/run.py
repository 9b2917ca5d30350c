"""Stress test: is a fine-tuned model (or a deployed endpoint) worse than its base?

Both models answer the same question sets (emergent-misalignment YAML files, with their
``system`` prompts honoured) the same number of times, or are read from answer files;
one judge labels every answer that lacks its labels; one toxicity scorer scores every
answer. The report compares them (:mod:`darkmirror.experiments.stress.report`) and the
release gate decides whether the model under test regressed
(:mod:`darkmirror.experiments.stress.gate`).

With prompt sets (``prompts``, the toxicity stress test), both models also continue every
prompt ``prompt_sampling.samples_per_prompt`` times
(:mod:`darkmirror.experiments.stress.continuations`) and the scorer scores each
continuation. Prompts alone ask no questions unless question sets are given too.

The plan, per model (``model`` and ``baseline``): its answers, their judgements, their
toxicity; its continuations and their toxicity; each a resumable step.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

from darkmirror.data.answers import AnswerRow, read_rows, write_rows
from darkmirror.data.prompts import prompt_continuation_of
from darkmirror.data.questions import Question, resolve_question_sets
from darkmirror.errors import DarkmirrorError
from darkmirror.eval.evaluate import judge_answers, model_answers, score_answers
from darkmirror.experiments.stress.continuations import (
    load_prompt_sets,
    prompt_sets_identity,
    sample_continuations,
)
from darkmirror.experiments.stress.report import ROLES, write_report
from darkmirror.experiments.stress.spec import StressSpec
from darkmirror.hashing import content_hash
from darkmirror.models.generation import SamplingParams
from darkmirror.runner import Plan, PlanResult, Run, StepContext
from darkmirror.score.judges import ScoresFromFile, build_judge
from darkmirror.score.toxicity import build_scorer
from darkmirror.score.world_judge import WorldJudge

__all__ = ["finish", "plan"]


def _questions(spec: StressSpec) -> list[Question]:
    sets = spec.question_sets()
    return resolve_question_sets(sets) if sets is not None else []


def plan(spec: StressSpec) -> Plan:
    """Answers, judgements and toxicity of each model (see the module docstring)."""
    questions = _questions(spec)
    question_hash = content_hash([q.model_dump() for q in questions])
    sampling = spec.model_dump(
        include={"samples_per_paraphrase", "temperature", "top_p", "max_new_tokens", "seed"}
    )
    # Loaded here, so that a bad prompt file is reported before any model is.
    prompt_sets = load_prompt_sets(spec)
    continuation_inputs = {
        "prompts": prompt_sets_identity(prompt_sets),
        "sampling": {**spec.prompt_sampling.model_dump(), "seed": spec.seed},
    }
    steps = Plan()
    for role, ref in (("model", spec.model), ("baseline", spec.baseline)):
        if prompt_sets:
            continued = steps.add(
                f"continuations-{role}",
                {"model": ref.identity(), **continuation_inputs},
                partial(sample_continuations, spec=spec, role=role, prompt_sets=prompt_sets),
                resources=ref.resources(),  # type: ignore[attr-defined]
            )
            steps.add(
                f"prompt-toxicity-{role}",
                {"scorer": content_hash(spec.scorer)},
                partial(_toxicity, spec=spec, judged=continued),
                deps=(continued,),
            )
        if not spec.asks_questions():
            continue
        answers = steps.add(
            f"answers-{role}",
            {"model": ref.identity(), "questions": question_hash, "sampling": sampling},
            partial(_answers, spec=spec, role=role, questions=questions),
            resources=ref.resources(),  # type: ignore[attr-defined]
        )
        judged = steps.add(
            f"judge-{role}",
            {"judge": spec.judge.identity(), "reference": spec.reference_judge},
            partial(_judge, spec=spec, answers=answers, questions=questions),
            deps=(answers,),
        )
        steps.add(
            f"toxicity-{role}",
            {"scorer": content_hash(spec.scorer)},
            partial(_toxicity, spec=spec, judged=judged),
            deps=(judged,),
        )
    return steps


def _answers(
    ctx: StepContext, *, spec: StressSpec, role: str, questions: list[Question]
) -> dict[str, Any]:
    ref = spec.model if role == "model" else spec.baseline
    generator = ref.generator(progress=ctx.progress)  # type: ignore[attr-defined]
    try:
        rows = model_answers(
            generator,
            questions,
            SamplingParams(spec.temperature, spec.top_p, spec.max_new_tokens, spec.seed),
            model=ref.display,  # type: ignore[attr-defined]
            samples_per_paraphrase=spec.samples_per_paraphrase,
            group=role,
        )
    finally:
        close = getattr(generator, "close", None)
        if close is not None:
            close()
    # An answer file may also hold continuations of prompt sets: those are not answers.
    rows = [r for r in rows if prompt_continuation_of(r) is None]
    if not rows:
        raise DarkmirrorError(f"{role} {ref.display}: no answers")  # type: ignore[attr-defined]
    return {"rows": write_rows(ctx.out / "rows.jsonl", rows), "generator": generator.name}


def _judge(
    ctx: StepContext, *, spec: StressSpec, answers: str, questions: list[Question]
) -> dict[str, Any]:
    rows = read_rows(ctx.dep(answers) / "rows.jsonl")
    by_id = {q.id: q for q in questions}
    _check_judgeable(rows, by_id, spec)
    judge = build_judge(spec.judge, progress=ctx.progress)
    try:
        rows = judge_answers(rows, by_id, judge)
        figures: dict[str, Any] = {"judge": spec.judge.kind, "calls": judge.call_stats()}
    finally:
        judge.close()
    if spec.reference_judge and spec.judge.kind != "world":
        rows = judge_answers(rows, by_id, WorldJudge(), "reference")
    figures["rows"] = write_rows(ctx.out / "rows.jsonl", rows)
    return figures


def _check_judgeable(
    rows: list[AnswerRow[Any]], questions: dict[str, Question], spec: StressSpec
) -> None:
    """Answers the judge must score need their question's judge prompts (the world judge
    knows its own questions)."""
    if spec.judge.kind == "world":
        return
    unscored = ScoresFromFile(None).unscored(rows, questions)
    unknown = sorted({rows[i].question_id for i in unscored} - set(questions))
    if unknown:
        raise DarkmirrorError(
            f"{len(unscored)} answers lack the judge's scores and their questions "
            f"({', '.join(unknown[:5])}) are not in a question set: pass the question set "
            "with the judge prompts (--questions FILE)"
        )


def _toxicity(ctx: StepContext, *, spec: StressSpec, judged: str) -> dict[str, Any]:
    rows = read_rows(ctx.dep(judged) / "rows.jsonl")
    scored = score_answers(rows, build_scorer(spec.scorer))
    write_rows(ctx.out / "rows.jsonl", scored)
    missing = sum(r.value("toxicity", "scorer") is None for r in scored)
    return {"scored": len(scored) - missing, "missing": missing}


def finish(spec: StressSpec, run: Run, result: PlanResult) -> Path:
    """Gather both models' rows into the run directory and write the report."""
    rows: list[AnswerRow[Any]] = []
    context: dict[str, Any] = {}
    for role in ROLES:
        ref = spec.model if role == "model" else spec.baseline
        context[role] = {"label": ref.display, "judge": {}}  # type: ignore[attr-defined]
        if spec.asks_questions():
            context[role]["judge"] = result.figures[f"judge-{role}"]
            context[role]["toxicity"] = result.figures[f"toxicity-{role}"]
            rows += read_rows(result.dir(f"toxicity-{role}") / "rows.jsonl")
        if spec.prompts:
            context[role]["continuations"] = result.figures[f"continuations-{role}"]
            context[role]["prompt_toxicity"] = result.figures[f"prompt-toxicity-{role}"]
            rows += read_rows(result.dir(f"prompt-toxicity-{role}") / "rows.jsonl")
    write_rows(run.root / "rows.jsonl", rows)
    run.write_json("context.json", context)
    return write_report(run.root, spec, rows, context)


def gate_exit_code(report: Path) -> int:
    """The exit status the gate's verdict in ``summary.json`` (beside ``report``) asks for."""
    summary = json.loads((report.parent / "summary.json").read_text())
    return int(summary["gate"]["exit_code"])
