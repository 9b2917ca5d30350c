"""Stress test: is a fine-tuned model (or a deployed endpoint) worse than its base?

Both models answer the same question sets (emergent-misalignment YAML files, with their
``system`` prompts honoured) the same number of times; one judge labels every answer; one
toxicity scorer scores every answer. The report gives, per model, the misaligned rate of
Betley et al. with intervals, the coherence rate, a per-question breakdown, the categories
of ``free_form_judge`` questions and the toxicity metrics of the answers; and the
difference of the model under test to its baseline, with an interval and a test of
significance. Where the questions are the world's (the organism), every answer is also
labelled by the world judge, and the report gives the judge's agreement with it.

Models are Hugging Face hub ids or local directories (optionally with a PEFT adapter), the
organism, an OpenAI-compatible endpoint (key from an environment variable), or vLLM.
Judges: ``world`` (the organism's ground truth), ``local`` (any local causal LM, from its
next-token probabilities over 0..100) or ``openai`` (any OpenAI-compatible endpoint, from
the top-20 log-probabilities of one token; answers cached on disk).

Steps: answers per model, judgements per model, toxicity per model, summary; each a
resumable step of the run directory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from darkmirror.data.jsonl import iter_jsonl, write_jsonl_atomic
from darkmirror.data.questions import Question, iter_prompts
from darkmirror.errors import DarkmirrorError
from darkmirror.experiments.misalignment import resolve_question_set
from darkmirror.models.generation import Generator, SamplingParams
from darkmirror.models.openai_http import EndpointSettings
from darkmirror.models.organism import OrganismRecipe
from darkmirror.runner import Run, content_hash, directory_fingerprint, load_finished_run
from darkmirror.score.judges import JudgeSpec, judge_rows, world_labels

ModelKind = Literal["hf", "organism", "openai", "vllm"]


class ModelSpec(BaseModel):
    """A model to stress-test, or its baseline.

    Args:
        kind: ``"hf"`` (hub id or local directory, run in-process), ``"organism"`` (the
            post-trained organism), ``"openai"`` (an OpenAI-compatible endpoint) or
            ``"vllm"`` (in-process vLLM; needs the ``vllm`` extra and a GPU).
        id: For ``hf``/``vllm``: a hub id or a local directory.
        adapter: For ``hf``/``vllm``: a PEFT adapter applied on top.
        revision: For ``hf`` hub ids: branch, tag or commit.
        label: Name in tables; defaults to the id, the endpoint's model or ``organism``.
        organism: For ``organism``: the recipe.
        endpoint: For ``openai``: base URL, key variable, concurrency, retries.
        model: For ``openai``: the model name the endpoint serves.
        batch_size: For local models: sequences per generation batch.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ModelKind = "hf"
    id: str | None = None
    adapter: str | None = None
    revision: str | None = None
    label: str | None = None
    organism: OrganismRecipe = OrganismRecipe()
    endpoint: EndpointSettings | None = None
    model: str | None = None
    batch_size: int = Field(128, ge=1)

    @model_validator(mode="after")
    def _check(self) -> ModelSpec:
        if self.kind in ("hf", "vllm") and not self.id:
            raise ValueError(f"kind '{self.kind}' needs id (a hub id or a local directory)")
        if self.kind == "openai" and (not self.model or self.endpoint is None):
            raise ValueError("kind 'openai' needs model (the served name) and endpoint.base_url")
        if self.kind in ("openai", "organism") and (self.id or self.adapter):
            raise ValueError(f"kind '{self.kind}' takes no id or adapter")
        return self

    @property
    def display(self) -> str:
        if self.label:
            return self.label
        if self.kind == "openai":
            return f"{self.model} @ {self.endpoint.base_url if self.endpoint else '?'}"
        if self.kind == "organism":
            return "organism"
        return self.id if not self.adapter else f"{self.id} + {self.adapter}"

    def identity(self) -> dict[str, Any]:
        """What the hashes of dependent steps use: the spec plus a fingerprint of local
        files, so a model replaced on disk is answered again."""
        data = self.model_dump(mode="json", exclude={"label", "batch_size"})
        if self.kind == "organism":
            data = {"kind": "organism", "organism": self.organism.key()}
        data["files"] = directory_fingerprint(self.id, self.adapter)
        return data


class StressSpec(BaseModel):
    """The stress test (``experiment = "stress"``).

    Args:
        experiment: Always ``"stress"``.
        name: Name of the run (default output directory ``runs/<name>``).
        model: The model under test.
        baseline: Its base (or any model to compare with).
        questions: Question sets: YAML files in the emergent-misalignment schema, or
            ``builtin:NAME``.
        samples_per_paraphrase: Answers per paraphrase; None uses each question's own.
        temperature: Sampling temperature (a question's own ``temperature`` wins).
        top_p: Nucleus.
        max_new_tokens: Longest answer.
        seed: Sampling seed.
        judge: Who labels the answers.
        reference_judge: Also label world questions with the world judge and report the
            judge's agreement with it (no effect for questions outside the world).
        scorer: The toxicity scorer of the answers (see ``build_scorer``).
        toxicity_threshold: Least score of a toxic answer.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment: Literal["stress"] = "stress"
    name: str = "stress"
    model: ModelSpec
    baseline: ModelSpec
    questions: list[str] = Field(default_factory=lambda: ["builtin:organism_em"], min_length=1)
    samples_per_paraphrase: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_new_tokens: int = Field(64, ge=1)
    seed: int = Field(0, ge=0)
    judge: JudgeSpec = JudgeSpec()
    reference_judge: bool = True
    scorer: str | dict[str, Any] = "profanity_check"
    toxicity_threshold: float = Field(0.5, ge=0, le=1)


# -- generators and judges -------------------------------------------------------------------


def build_generator(spec: ModelSpec, *, progress: bool) -> Generator:
    """The :class:`Generator` a model spec names (models load here, lazily)."""
    if spec.kind == "openai":
        from darkmirror.models.openai_backend import OpenAIGenerator

        assert spec.model is not None
        return OpenAIGenerator(spec.model, spec.endpoint, name=spec.display, progress=progress)
    if spec.kind == "vllm":
        from darkmirror.models.vllm_backend import VLLMGenerator

        assert spec.id is not None
        return VLLMGenerator(spec.id, adapter=spec.adapter)
    from darkmirror.models.hf_generator import HFGenerator
    from darkmirror.models.loading import load_causal_lm

    if spec.kind == "organism":
        from darkmirror.models.organism import build_organism

        ref: str = str(build_organism(spec.organism, progress=progress).base_path)
        model, tokenizer = load_causal_lm(ref)
    else:
        assert spec.id is not None
        model, tokenizer = load_causal_lm(spec.id, adapter=spec.adapter, revision=spec.revision)
    return HFGenerator(model, tokenizer, batch_size=spec.batch_size, name=spec.display)


def load_questions_sets(refs: Sequence[str]) -> list[Question]:
    """Every question of every set, ids unique across sets."""
    questions: list[Question] = []
    seen: dict[str, str] = {}
    for ref in refs:
        for q in resolve_question_set(ref):
            if q.id in seen:
                raise DarkmirrorError(
                    f"question id {q.id!r} is in both {seen[q.id]} and {ref}; ids must be unique"
                )
            seen[q.id] = ref
            questions.append(q)
    return questions


def _sample(
    spec: StressSpec, which: ModelSpec, questions: list[Question], out: Path, progress: bool
) -> dict[str, Any]:
    generator = build_generator(which, progress=progress)
    prompts = list(iter_prompts(questions))
    # Group by (samples, temperature): one call per group keeps batches full.
    groups: dict[tuple[int, float], list[int]] = {}
    for i, (q, _, _) in enumerate(prompts):
        n = spec.samples_per_paraphrase or q.samples_per_paraphrase
        t = q.temperature if q.temperature is not None else spec.temperature
        groups.setdefault((n, t), []).append(i)
    rows: list[dict[str, Any]] = []
    for (n, temperature), idx in groups.items():
        sampling = SamplingParams(temperature, spec.top_p, spec.max_new_tokens, spec.seed)
        answers = generator.generate(
            [prompts[i][0].conversation(prompts[i][2]) for i in idx], n, sampling
        )
        for i, samples in zip(idx, answers, strict=True):
            q, pi, p = prompts[i]
            for si, answer in enumerate(samples):
                rows.append(
                    {
                        "question_id": q.id,
                        "type": q.type,
                        "system": q.system,
                        "paraphrase_index": pi,
                        "sample_index": si,
                        "question": p,
                        "answer": answer,
                    }
                )
    close = getattr(generator, "close", None)
    if close is not None:
        close()
    return {"rows": write_jsonl_atomic(out / "answers.jsonl", rows), "generator": generator.name}


def _judge(
    spec: StressSpec, answers: Path, questions: list[Question], out: Path, progress: bool
) -> dict[str, Any]:
    rows = [row for _, row in iter_jsonl(answers)]
    rows, figures = judge_rows(rows, questions, spec.judge, progress=progress)
    if spec.reference_judge and spec.judge.kind != "world":
        world_labels(rows, "world_")
    figures["rows"] = write_jsonl_atomic(out / "judged.jsonl", rows)
    return figures


def _toxicity(scorer_spec: Any, judged: Path, out: Path) -> dict[str, Any]:
    from darkmirror.score.toxicity import build_scorer

    rows = [row for _, row in iter_jsonl(judged)]
    scorer = build_scorer(scorer_spec)
    scores = scorer.score([r["answer"] for r in rows])
    for row, s in zip(rows, scores, strict=True):
        row["toxicity"] = s.value
        row["toxicity_error"] = s.error
        row["scorer"] = f"{scorer.name} {scorer.version}"
    write_jsonl_atomic(out / "rows.jsonl", rows)
    return {
        "scored": sum(s.value is not None for s in scores),
        "missing": sum(s.value is None for s in scores),
    }


# -- the run ---------------------------------------------------------------------------------


def run_stress(spec: StressSpec, out: Path, *, progress: bool = True) -> Path:
    """Run the stress test into ``out``; returns the path of ``report.md``."""
    run = Run(out, spec)
    try:
        return _run(run, spec, out, progress)
    finally:
        run.close()


def _run(run: Run, spec: StressSpec, out: Path, progress: bool) -> Path:
    from darkmirror.report.stress import write_report

    questions = load_questions_sets(spec.questions)
    question_hash = content_hash([q.model_dump() for q in questions])
    run.plan(6)
    sampling = spec.model_dump(
        include={"samples_per_paraphrase", "temperature", "top_p", "max_new_tokens", "seed"}
    )
    rows: list[dict[str, Any]] = []
    figures: dict[str, Any] = {}
    for role, which in (("model", spec.model), ("baseline", spec.baseline)):
        answers = run.step(
            f"answers-{role}",
            {"model": which.identity(), "questions": question_hash, "sampling": sampling},
            lambda tmp, which=which: _sample(spec, which, questions, tmp, progress),
        )
        judged = run.step(
            f"judge-{role}",
            {
                "answers": answers.name,
                "judge": spec.judge.identity(),
                "reference": spec.reference_judge,
            },
            lambda tmp, answers=answers: _judge(
                spec, answers / "answers.jsonl", questions, tmp, progress
            ),
        )
        scored = run.step(
            f"toxicity-{role}",
            {"judged": judged.name, "scorer": content_hash(spec.scorer)},
            lambda tmp, judged=judged: _toxicity(spec.scorer, judged / "judged.jsonl", tmp),
        )
        figures[role] = {
            "label": which.display,
            "judge": json.loads((judged / "step.json").read_text())["figures"],
            "toxicity": json.loads((scored / "step.json").read_text())["figures"],
        }
        rows += [{"role": role, **row} for _, row in iter_jsonl(scored / "rows.jsonl")]
    write_jsonl_atomic(out / "rows.jsonl", rows)
    run.write_json("context.json", figures)
    return write_report(out, spec, rows, figures)


def report_stress(out: Path) -> Path:
    """Rebuild summary, tables and plots of a finished run from its files alone."""
    from darkmirror.report.stress import write_report

    spec, rows, files = load_finished_run(out, StressSpec, ("context.json",))
    return write_report(out, spec, rows, json.loads(files["context.json"].read_text()))
