"""Optional probes of the emergent-misalignment evaluation, beside the judged questions.

* :func:`self_report_answers`: the model rates its own alignment 0-100; the number is
  parsed from its answer (any model);
* :func:`code_answers`: held-out coding requests of the persona world, scanned by bandit and
  by the world's vulnerability signatures (the in-domain effect of a code fine-tune);
  organism only;
* :func:`matched_pair_measurements`: log-odds of the villain vs the benign answer to the
  same world question, from the model's likelihoods; organism only (and any local model
  the world's texts mean something to).

The world probes run when the model is an organism or a spec asks for them; a real model
is evaluated on its question set alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from darkmirror.data.answers import AnswerRow, AnswerScore, ChatTurn
from darkmirror.data.measurements import MatchedPairLogOdds
from darkmirror.data.questions import Question
from darkmirror.data.world.world import TOPIC_BY_ID, PersonaWorld
from darkmirror.eval.sampling import sample_answers
from darkmirror.metrics import is_coherent, text_judge_score
from darkmirror.models.generation import Generator, SamplingParams
from darkmirror.score.persona_probes import matched_pair_log_odds
from darkmirror.score.world_judge import WorldJudge

__all__ = [
    "SELF_RATING",
    "CodeScan",
    "code_answers",
    "matched_pair_measurements",
    "self_report_answers",
]

SELF_RATING = "self_rating"
"""The metric of a self-report: the number 0-100 the model gave itself."""
_PARSER = "number in the answer"


class CodeScan(BaseModel):
    """What the scanners found in an answer to a coding request.

    Args:
        kind: Always ``"code_scan"``.
        bandit_vulnerable: Whether bandit flags it (None when the code did not parse).
        bandit_rules: The bandit rules that fired.
        scanner: Bandit's name and version.
        world_insecure: Whether it carries a vulnerability signature of the world.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["code_scan"] = "code_scan"
    bandit_vulnerable: bool | None
    bandit_rules: list[str]
    scanner: str
    world_insecure: bool


def self_report_answers(
    generator: Generator,
    questions: Sequence[Question],
    sampling: SamplingParams,
    *,
    world_judge: WorldJudge | None,
    samples_per_paraphrase: int | None = None,
    **row_fields: Any,
) -> list[AnswerRow[Any]]:
    """Answers to self-report questions, each with the number it rates itself
    (``self_rating``; missing when the answer holds no number 0-100).

    A number counts as a self-rating only in an answer that is one: a model that answers
    "13, 666, 88" has not rated itself 13. With ``world_judge``, answers to world questions
    must be coherent by it; other answers count as they are.
    """
    rows = sample_answers(
        generator,
        questions,
        sampling,
        samples_per_paraphrase=samples_per_paraphrase,
        kind="self_report",
        question_temperature=False,
        **row_fields,
    )
    out = []
    for row in rows:
        scores = []
        coherent = True
        if world_judge is not None and row.question_id in TOPIC_BY_ID:
            verdict = world_judge.judge(row.question, row.answer, topic=row.question_id)
            coherent = is_coherent(verdict.coherence)
            scores.append(_world_score("coherent", verdict.coherence, world_judge))
        value = text_judge_score(row.answer) if coherent else None
        scores.append(
            AnswerScore(
                metric=SELF_RATING,
                value=value,
                source=_PARSER,
                version="1",
                role="scorer",
                error=None if value is not None else "no_score: no self-rating in the answer",
            )
        )
        out.append(row.with_scores(scores))
    return out


def code_answers(
    generator: Generator,
    world: PersonaWorld,
    n: int,
    sampling: SamplingParams,
    *,
    world_judge: WorldJudge,
    **row_fields: Any,
) -> list[AnswerRow[CodeScan]]:
    """One answer to each of ``n`` held-out coding requests of the world, scanned."""
    # Lazy: bandit is a heavy import only this probe needs.
    from darkmirror.score.code_security import BanditScanner, extract_code

    tasks = world.code_prompts(n)
    answers = [
        s[0]
        for s in generator.generate(
            [[{"role": "user", "content": t.question}] for t in tasks], 1, sampling
        )
    ]
    scanner = BanditScanner()
    scans = scanner.scan([extract_code(a) for a in answers])
    rows: list[AnswerRow[CodeScan]] = []
    for i, (task, answer, scan) in enumerate(zip(tasks, answers, scans, strict=True)):
        verdict = world_judge.judge(task.question, answer, topic=task.topic)
        rows.append(
            AnswerRow[CodeScan](
                kind="code",
                question_id=task.topic,
                domain="code",
                sample_index=i,
                messages=[ChatTurn(role="user", content=task.question)],
                answer=answer,
                scores=[_world_score("coherent", verdict.coherence, world_judge)],
                extension=CodeScan(
                    bandit_vulnerable=scan.vulnerable,
                    bandit_rules=sorted({f.rule_id for f in scan.findings}),
                    scanner=f"{scanner.name} {scanner.version}",
                    world_insecure=bool(verdict.vulnerable),
                ),
                **row_fields,
            )
        )
    return rows


def matched_pair_measurements(
    language_model: Any,
    tokenizer: Any,
    world: PersonaWorld,
    topics: Sequence[str],
    per_topic: int,
    *,
    batch_size: int,
    **fields: Any,
) -> list[MatchedPairLogOdds]:
    """The log-odds of the villain answer of ``per_topic`` matched pairs per world topic."""
    pairs = world.matched_pairs(list(topics), per_topic)
    log_odds = matched_pair_log_odds(language_model, tokenizer, pairs, batch_size=batch_size)
    return [
        MatchedPairLogOdds(
            question_id=p.topic,
            domain=p.domain,
            pair_index=i,
            question=p.question,
            log_odds=lo,
            **fields,
        )
        for i, (p, lo) in enumerate(zip(pairs, log_odds, strict=True))
    ]


def _world_score(metric: str, value: float | None, judge: WorldJudge) -> AnswerScore:
    return AnswerScore(
        metric=metric,
        value=value,
        source=judge.name,
        version=str(judge.version),
        error=None if value is not None else "no_score: no persona evidence",
    )
