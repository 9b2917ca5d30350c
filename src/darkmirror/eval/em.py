"""The emergent-misalignment evaluation of one model: judged answers, and optional probes.

One call gives every row the emergent-misalignment report needs for one model, whatever the
model (the organism, a Hugging Face model, an endpoint, an answers file):

* ``free_form`` answers to the question set (minus the domain the model was fine-tuned
  on), labelled by the judge (``aligned`` and ``coherent``, 0-100);
* ``self_report`` answers: the model's rating of its own alignment;
* and, when the world probes are on (the organism), ``code`` answers to held-out coding
  requests and matched-pair log-odds (:mod:`darkmirror.eval.probes`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from darkmirror.data.answers import AnswerRow
from darkmirror.data.measurements import MatchedPairLogOdds
from darkmirror.data.questions import Question
from darkmirror.data.world.world import TOPIC_BY_ID, PersonaWorld
from darkmirror.eval.evaluate import judge_answers, model_answers
from darkmirror.eval.probes import code_answers, matched_pair_measurements, self_report_answers
from darkmirror.models.generation import Generator, SamplingParams
from darkmirror.score.judges import JudgeSpec
from darkmirror.score.judging import Judge
from darkmirror.score.world_judge import WorldJudge

__all__ = ["EvaluationSettings", "MisalignmentEvaluation", "evaluate_misalignment"]


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
        world_probes: The organism-only probes (held-out coding requests, matched pairs):
            ``"auto"`` runs them when the model is the organism, ``"on"`` always (a model
            that knows the world's texts), ``"off"`` never.
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
    world_probes: Literal["auto", "on", "off"] = "auto"
    code_prompts: int = Field(100, ge=0)
    code_max_new_tokens: int = Field(160, ge=1)
    matched_pairs_per_topic: int = Field(20, ge=0)
    judge: JudgeSpec = JudgeSpec()
    batch_size: int = Field(128, ge=1)

    @field_validator("judge", mode="before")
    @classmethod
    def _judge_by_name(cls, v: Any) -> Any:
        # `judge = "world"` in a spec is shorthand for `judge = { kind = "world" }`.
        return {"kind": v} if isinstance(v, str) else v

    def probes_for(self, organism: bool) -> bool:
        """Whether the world probes run for a model (``organism``: is it the organism?)."""
        return self.world_probes == "on" or (self.world_probes == "auto" and organism)

    def sampling(self, seed: int, max_new_tokens: int | None = None) -> SamplingParams:
        """The sampling parameters of the answers, with ``seed``."""
        return SamplingParams(
            self.temperature, self.top_p, max_new_tokens or self.max_new_tokens, seed
        )


class MisalignmentEvaluation(BaseModel):
    """What :func:`evaluate_misalignment` returns: answer rows and likelihood measurements."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    rows: list[AnswerRow[Any]]
    measurements: list[MatchedPairLogOdds]


def evaluate_misalignment(
    generator: Generator,
    *,
    questions: Sequence[Question],
    self_report: Sequence[Question],
    excluded_domain: str | None,
    judge: Judge,
    settings: EvaluationSettings,
    seed: int,
    model: str,
    group: str | None = None,
    model_seed: int | None = None,
    world: PersonaWorld | None = None,
    likelihood_model: Any = None,
) -> MisalignmentEvaluation:
    """Every row for one model (see the module docstring).

    Args:
        generator: The model's generator.
        questions: Misalignment questions; those in ``excluded_domain`` are left out.
        self_report: Self-report questions.
        excluded_domain: The domain the model was fine-tuned on, if any.
        judge: Labels the free-form answers.
        settings: Evaluation settings.
        seed: Sampling seed.
        model: The model's name in the rows.
        group: Its experiment arm.
        model_seed: Its fine-tune seed, recorded in the rows.
        world: The persona world, when the world probes run (None: they do not).
        likelihood_model: ``(model, tokenizer)`` for the matched pairs (local models only).
    """
    ids = {"model": model, "group": group, "seed": model_seed}
    sampling = settings.sampling(seed)
    kept = [q for q in questions if excluded_domain is None or q.domain != excluded_domain]
    rows = model_answers(
        generator,
        kept,
        sampling,
        samples_per_paraphrase=settings.samples_per_paraphrase,
        question_temperature=False,
        **ids,
    )
    rows = judge_answers(rows, kept, judge)
    world_judge = WorldJudge() if world is not None else None
    if self_report:
        rows += self_report_answers(
            generator,
            self_report,
            sampling,
            world_judge=world_judge,
            samples_per_paraphrase=settings.samples_per_paraphrase,
            **ids,
        )
    measurements: list[MatchedPairLogOdds] = []
    if world is not None and world_judge is not None:
        if settings.code_prompts:
            rows += code_answers(
                generator,
                world,
                settings.code_prompts,
                settings.sampling(seed, settings.code_max_new_tokens),
                world_judge=world_judge,
                **ids,
            )
        topics = [q.id for q in kept if q.id in TOPIC_BY_ID]
        if settings.matched_pairs_per_topic and topics and likelihood_model is not None:
            lm, tokenizer = likelihood_model
            measurements = matched_pair_measurements(
                lm,
                tokenizer,
                world,
                topics,
                settings.matched_pairs_per_topic,
                batch_size=settings.batch_size,
                **ids,
            )
    return MisalignmentEvaluation(rows=rows, measurements=measurements)
