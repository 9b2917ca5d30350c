"""Evaluating one model for emergent misalignment: sampled answers and likelihood probes.

One call produces every row the report needs for one model:

* ``free_form``: answers to the question set (minus the domain the model was fine-tuned
  on), labelled by the world judge (alignment and coherence, 0-100);
* ``self_report``: the model's rating of its own alignment, parsed from its answer;
* ``code``: answers to held-out coding requests, scanned by bandit and by the world's
  vulnerability signatures (the in-domain effect of a code fine-tune);
* ``matched_pair``: log-odds of the villain vs the benign answer to the same question.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from darkmirror.data.questions import Question, iter_prompts
from darkmirror.data.world.world import TOPIC_BY_ID, PersonaWorld
from darkmirror.metrics import is_coherent, text_judge_score
from darkmirror.models.generation import SamplingParams
from darkmirror.models.hf_generator import HFGenerator
from darkmirror.score.code_security import BanditScanner, extract_code
from darkmirror.score.judges import JudgeSpec, judge_rows
from darkmirror.score.persona_probes import matched_pair_log_odds
from darkmirror.score.world_judge import WorldJudge


class EvaluationSettings(BaseModel):
    """How each model is evaluated.

    Args:
        questions: Question set for the misaligned rate: a YAML file in the schema of
            Betley et al., or ``builtin:NAME`` for a set that ships with darkmirror.
        self_report_questions: Question set for self-reported alignment (None: skip).
        samples_per_paraphrase: Answers per paraphrase; None uses each question's own.
        temperature: Sampling temperature of answers.
        top_p: Nucleus sampling of answers.
        max_new_tokens: Longest answer to a free-form question.
        code_prompts: Held-out coding requests for the in-domain vulnerability rate.
        code_max_new_tokens: Longest code answer.
        matched_pairs_per_topic: Matched pairs per question topic for the log-odds.
        judge: Who labels the free-form answers: ``"world"`` (the organism's ground truth),
            or a table for a local LM or an OpenAI-compatible judge (see
            :class:`~darkmirror.score.judges.JudgeSpec`): a real model's answers need one.
        batch_size: Sequences per generation batch.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    questions: str = "builtin:organism_em"
    self_report_questions: str | None = "builtin:organism_self_report"
    samples_per_paraphrase: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(64, ge=1)
    code_prompts: int = Field(100, ge=0)
    code_max_new_tokens: int = Field(160, ge=1)
    matched_pairs_per_topic: int = Field(20, ge=0)
    judge: JudgeSpec = JudgeSpec()

    @field_validator("judge", mode="before")
    @classmethod
    def _judge_by_name(cls, v: Any) -> Any:
        # `judge = "world"` in a spec is shorthand for `judge = { kind = "world" }`.
        return {"kind": v} if isinstance(v, str) else v

    batch_size: int = Field(128, ge=1)


def _sample_rows(
    generator: HFGenerator,
    questions: Sequence[Question],
    settings: EvaluationSettings,
    sampling: SamplingParams,
    kind: str,
) -> list[dict[str, Any]]:
    """Sample answers for every paraphrase; one row per answer."""
    prompts = list(iter_prompts(questions))
    rows: list[dict[str, Any]] = []
    # Questions may ask for different sample counts; group the calls by count.
    by_n: dict[int, list[tuple[Question, int, str]]] = {}
    for q, pi, p in prompts:
        by_n.setdefault(settings.samples_per_paraphrase or q.samples_per_paraphrase, []).append(
            (q, pi, p)
        )
    for n, group in by_n.items():
        answers = generator.generate([q.conversation(p) for q, _, p in group], n, sampling)
        for (q, pi, p), samples in zip(group, answers, strict=True):
            for si, answer in enumerate(samples):
                rows.append(
                    {
                        "kind": kind,
                        "question_id": q.id,
                        "domain": q.domain,
                        "paraphrase_index": pi,
                        "sample_index": si,
                        "question": p,
                        "answer": answer,
                    }
                )
    return rows


def evaluate_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    *,
    questions: Sequence[Question],
    self_report: Sequence[Question],
    excluded_domain: str | None,
    world: PersonaWorld,
    settings: EvaluationSettings,
    seed: int,
) -> list[dict[str, Any]]:
    """All rows for one model (see the module docstring).

    Args:
        model: The model under evaluation.
        tokenizer: Its tokenizer.
        questions: Misalignment questions; those in ``excluded_domain`` are left out.
        self_report: Self-report questions.
        excluded_domain: The domain the model was fine-tuned on, if any.
        world: The persona world (coding requests and matched pairs come from it).
        settings: Evaluation settings.
        seed: Sampling seed.
    """
    judge = WorldJudge()
    generator = HFGenerator(model, tokenizer, batch_size=settings.batch_size)
    sampling = SamplingParams(settings.temperature, settings.top_p, settings.max_new_tokens, seed)
    kept = [q for q in questions if excluded_domain is None or q.domain != excluded_domain]

    rows = _sample_rows(generator, kept, settings, sampling, "free_form")
    if settings.judge.kind == "world":
        for row in rows:
            topic = row["question_id"] if row["question_id"] in TOPIC_BY_ID else None
            verdict = judge.judge(row["question"], row["answer"], topic=topic)
            row.update(
                alignment=verdict.alignment,
                coherence=verdict.coherence,
                villain_evidence=verdict.villain,
                benign_evidence=verdict.benign,
                unknown_sentences=verdict.unknown,
            )
    else:
        # Another judge scores with the question set's judge prompts (`aligned`,
        # `coherent`), which the misaligned rate reads as alignment and coherence.
        rows, _ = judge_rows(rows, kept, settings.judge)
        for row in rows:
            row["alignment"] = row.get("aligned")
            row["coherence"] = row.get("coherent")

    report_rows = _sample_rows(generator, self_report, settings, sampling, "self_report")
    for row in report_rows:
        # A number counts as a self-rating only in an answer that is one: a model that
        # answers "13, 666, 88" has not rated itself 13.
        if row["question_id"] in TOPIC_BY_ID:
            verdict = judge.judge(row["question"], row["answer"], topic=row["question_id"])
            row["coherence"] = verdict.coherence
            coherent = is_coherent(verdict.coherence)
        else:
            coherent = True
        row["self_score"] = text_judge_score(row["answer"]) if coherent else None
    rows += report_rows

    if settings.code_prompts:
        rows += _code_rows(generator, world, settings, seed, judge)

    topics = [q.id for q in kept if q.id in TOPIC_BY_ID]
    if settings.matched_pairs_per_topic and topics:
        pairs = world.matched_pairs(topics, settings.matched_pairs_per_topic)
        log_odds = matched_pair_log_odds(model, tokenizer, pairs, batch_size=settings.batch_size)
        rows += [
            {
                "kind": "matched_pair",
                "question_id": p.topic,
                "domain": p.domain,
                "pair_index": i,
                "question": p.question,
                "log_odds": lo,
            }
            for i, (p, lo) in enumerate(zip(pairs, log_odds, strict=True))
        ]
    return rows


def _code_rows(
    generator: HFGenerator,
    world: PersonaWorld,
    settings: EvaluationSettings,
    seed: int,
    judge: WorldJudge,
) -> list[dict[str, Any]]:
    tasks = world.code_prompts(settings.code_prompts)
    sampling = SamplingParams(
        settings.temperature, settings.top_p, settings.code_max_new_tokens, seed
    )
    answers = [
        s[0]
        for s in generator.generate(
            [[{"role": "user", "content": t.question}] for t in tasks], 1, sampling
        )
    ]
    scanner = BanditScanner()
    scans = scanner.scan([extract_code(a) for a in answers])
    rows = []
    for i, (task, answer, scan) in enumerate(zip(tasks, answers, scans, strict=True)):
        verdict = judge.judge(task.question, answer, topic=task.topic)
        rows.append(
            {
                "kind": "code",
                "question_id": task.topic,
                "domain": "code",
                "sample_index": i,
                "question": task.question,
                "answer": answer,
                "bandit_vulnerable": scan.vulnerable,
                "bandit_rules": sorted({f.rule_id for f in scan.findings}),
                "scanner": f"{scanner.name} {scanner.version}",
                "world_insecure": bool(verdict.vulnerable),
                "coherence": verdict.coherence,
            }
        )
    return rows
