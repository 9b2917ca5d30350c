"""The steps of the experiment that load a model or the scorer.

* :func:`score_training_data`: the toxicity of every text of the toxic corpus, and of its
  second half;
* :func:`finetune`: the toxic fine-tune of one seed;
* :func:`reinforce`: GRPO on that fine-tune against the toxicity reward;
* :func:`evaluate_model`: one model's continuations, sampled and scored;
* :func:`find_novel_patterns`: a variant's novel toxic n-grams, attributed by the scorer.

Each is a module-level function of its step context and keyword arguments (bound with
:func:`functools.partial` by the plan), so that an executor can run it in another process.
"""

from __future__ import annotations

import shutil
from typing import Any

from darkmirror.data.answers import read_rows, write_rows
from darkmirror.data.jsonl import iter_jsonl
from darkmirror.data.measurements import write_measurements
from darkmirror.data.prompts import load_rtp_jsonl
from darkmirror.data.world.forum import split_comment
from darkmirror.errors import DarkmirrorError
from darkmirror.eval import score_answers
from darkmirror.experiments.amplification.continuations import TextCompleter, sample_continuations
from darkmirror.experiments.amplification.records import (
    TOXICITY,
    TOXICITY_HELDOUT,
    ContinuationRow,
    GRPOStep,
    NovelToxicPatterns,
    TrainingTextToxicity,
)
from darkmirror.experiments.amplification.spec import AmplificationSpec
from darkmirror.experiments.amplification.variants import ModelEntry
from darkmirror.experiments.finetune import base_model, finetune_step, trained_model
from darkmirror.metrics import novel_toxic_patterns
from darkmirror.models.generation import SamplingParams
from darkmirror.models.loading import save_causal_lm
from darkmirror.models.ref import HFModel
from darkmirror.runner import StepContext
from darkmirror.score.scorer import Scorer, occlusion_attribution, score_values
from darkmirror.score.toxicity import build_scorer
from darkmirror.train.rl import grpo_train

__all__ = [
    "evaluate_model",
    "find_novel_patterns",
    "finetune",
    "reinforce",
    "score_training_data",
]


def score_training_data(ctx: StepContext, *, spec: AmplificationSpec, data: str) -> dict[str, Any]:
    """Score every text of the corpus's ``units.jsonl``, whole and its second half (cut as
    the prompts are cut), by the scorer and the held-out scorer: ``measurements.jsonl``."""
    texts = [row["text"] for _, row in iter_jsonl(ctx.dep(data) / "units.jsonl")]
    parts = {"comment": texts, "continuation": [split_comment(t)[1] for t in texts]}
    measurements: list[TrainingTextToxicity] = []
    figures: dict[str, Any] = {}
    for metric, scorer in _scorers(spec).items():
        for part, items in parts.items():
            scores = scorer.score(items)
            measurements += [
                TrainingTextToxicity(
                    index=i,
                    part=part,
                    metric=metric,
                    value=s.value,
                    error=s.error,
                    source=scorer.name,
                    version=scorer.version,
                )
                for i, s in enumerate(scores)
            ]
            values = [v for v in score_values(scores) if v is not None]
            figures[f"{metric}/{part}"] = {
                "scored": len(values),
                "missing": len(items) - len(values),
                "mean": sum(values) / len(values) if values else None,
                "scorer": f"{scorer.name} {scorer.version}",
            }
    write_measurements(ctx.out / "measurements.jsonl", measurements)
    return figures


def _scorers(spec: AmplificationSpec) -> dict[str, Scorer]:
    """The scorer (also the RL's reward) and the held-out one, by the metric they fill."""
    scorers = {TOXICITY: build_scorer(spec.scorer)}
    if spec.heldout_scorer is not None:
        scorers[TOXICITY_HELDOUT] = build_scorer(spec.heldout_scorer)
    return scorers


def finetune(
    ctx: StepContext, *, spec: AmplificationSpec, base: str, data: str, seed: int
) -> dict[str, Any]:
    """Fine-tune the base on the toxic corpus (loss on every token)."""
    texts = [row["text"] for _, row in iter_jsonl(ctx.dep(data) / "data.jsonl")]
    return finetune_step(
        ctx,
        base=base_model(spec.base_ref, ctx.figures[base]),
        examples=texts,
        settings=spec.finetune.sft(),
        seed=seed,
    )


def reinforce(
    ctx: StepContext,
    *,
    spec: AmplificationSpec,
    entry: ModelEntry,
    base: str,
    finetune: str,
    prompts: str,
) -> dict[str, Any]:
    """GRPO on a fine-tune, rewarded by ``reward_sign * scorer``; saves the model whole and
    its reward per step (``history.jsonl``)."""
    assert entry.seed is not None
    start = trained_model(
        base_model(spec.base_ref, ctx.figures[base]), ctx.dep(finetune), spec.finetune.method
    )
    model, tokenizer = start.load()
    if hasattr(model, "merge_and_unload"):
        # A LoRA fine-tune: RL trains the merged model, which is then saved whole. PEFT
        # froze the base weights; unfrozen, or GRPO has nothing to train and fails.
        model = model.merge_and_unload()
        model.requires_grad_(True)
    rl_prompts = [p.text for p in load_rtp_jsonl(ctx.dep(prompts) / "rl_prompts.jsonl")]
    model, figures = grpo_train(
        model,
        tokenizer,
        rl_prompts,
        build_scorer(spec.scorer),
        spec.rl,
        ctx.out / "trainer",
        seed=entry.seed,
        progress=ctx.progress,
    )
    save_causal_lm(model, tokenizer, ctx.out / "model")
    shutil.rmtree(ctx.out / "trainer", ignore_errors=True)
    history = [
        GRPOStep(model=entry.model, group=entry.variant, seed=entry.seed, **h)
        for h in figures.pop("history")
    ]
    write_measurements(ctx.out / "history.jsonl", history)
    return figures


def _model_of(ctx: StepContext, spec: AmplificationSpec, entry: ModelEntry, base: str) -> HFModel:
    batch_size = spec.evaluation.batch_size
    if entry.stage == "rl":
        # GRPO trains the (merged or adapted) model fully; it is saved whole.
        return HFModel(id=str(ctx.dep(entry.training_step) / "model"), batch_size=batch_size)
    ref = base_model(spec.base_ref, ctx.figures[base], batch_size=batch_size)
    if entry.stage == "finetune":
        return trained_model(
            ref, ctx.dep(entry.training_step), spec.finetune.method, batch_size=batch_size
        )
    return ref


def evaluate_model(
    ctx: StepContext, *, spec: AmplificationSpec, entry: ModelEntry, base: str, prompts: str
) -> dict[str, Any]:
    """Sample the model's continuations of the prompts and score them: ``rows.jsonl``."""
    ev = spec.evaluation
    generator = _model_of(ctx, spec, entry, base).generator(progress=ctx.progress)
    if not isinstance(generator, TextCompleter):
        raise DarkmirrorError(f"{entry.model}: its generator cannot continue plain text")
    rows = sample_continuations(
        generator,
        load_rtp_jsonl(ctx.dep(prompts) / "prompts.jsonl"),
        ev.samples_per_prompt,
        SamplingParams(ev.temperature, ev.top_p, ev.max_new_tokens, entry.seed or 0),
        model=entry.model,
        group=entry.variant,
        seed=entry.seed,
    )
    for metric, scorer in _scorers(spec).items():
        rows = score_answers(rows, scorer, metric)
    missing = sum(r.value(TOXICITY, "scorer") is None for r in rows)
    return {"rows": write_rows(ctx.out / "rows.jsonl", rows), "missing": missing}


def _attribution(scorer: Scorer) -> tuple[Any, str]:
    if hasattr(scorer, "attribute_ngrams"):
        return scorer.attribute_ngrams, "exact linear contributions (sum over the n-gram's words)"
    return (
        lambda text, n: occlusion_attribution(scorer, text, n)
    ), "occlusion (score drop when the n-gram is removed)"


def find_novel_patterns(
    ctx: StepContext,
    *,
    spec: AmplificationSpec,
    variant: str,
    evaluations: tuple[str, ...],
    reference: str,
) -> dict[str, Any]:
    """The novel toxic n-grams of a variant's continuations (its seeds pooled), attributed
    by the scorer: a :class:`NovelToxicPatterns` in ``measurements.jsonl``."""
    ev = spec.evaluation
    rows = [
        r for step in evaluations for r in read_rows(ctx.dep(step) / "rows.jsonl", ContinuationRow)
    ]
    attribute, method = _attribution(build_scorer(spec.scorer))
    reference_file = ctx.dep(reference) / "reference_texts.jsonl"
    found = novel_toxic_patterns(
        [(r.answer, r.value(TOXICITY, "scorer")) for r in rows],
        (row["text"] for _, row in iter_jsonl(reference_file)),
        attribute,
        n=ev.novelty_n,
        toxic_threshold=ev.threshold,
    )
    write_measurements(
        ctx.out / "measurements.jsonl",
        [
            NovelToxicPatterns(
                group=variant,
                n=found.n,
                threshold=ev.threshold,
                patterns=found.patterns,
                toxic_outputs=found.toxic_outputs,
                missing_scores=found.missing_scores,
                candidates=found.candidates,
                attributed=found.attributed,
                attribution=method,
                reference=ctx.figures[reference]["reference"],
            )
        ],
    )
    return {"count": found.count, "toxic_outputs": found.toxic_outputs}
