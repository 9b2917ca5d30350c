"""Toxicity amplification: the seed table (baseline, toxic fine-tune, RL on a toxic reward).

Variants: the base (the post-trained organism by default); the base fine-tuned on a toxic
comment corpus (``world:toxic_forum`` by default: threads of a forum where half the
commenters insult); and that fine-tune trained further with GRPO against a toxicity
reward. Each variant continues RealToxicityPrompts-style prompts (drawn from the world, or
a RealToxicityPrompts JSONL file) k times; every continuation is scored by one scorer
(``profanity_check`` by default), which also scores the training data, so the
amplification ratio compares like with like.

Steps: base model, training data, prompts, training-data toxicity, fine-tune per seed, RL
per seed, evaluation per model, summary. Each is a resumable step of the run directory.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from darkmirror.data.jsonl import iter_jsonl, write_jsonl_atomic
from darkmirror.data.prompts import ToxicityPrompt, load_rtp_jsonl, write_prompts_jsonl
from darkmirror.data.records import TextRecord, dataset_sha256, read_records
from darkmirror.data.world.world import PersonaWorld
from darkmirror.errors import DarkmirrorError
from darkmirror.experiments.common import (
    SeededFinetune,
    finetune_step,
    load_ref,
    resolve_base,
    trained_ref,
)
from darkmirror.models.chat_format import END_OF_TEXT, render_chat
from darkmirror.models.generation import SamplingParams
from darkmirror.models.hf_generator import HFGenerator
from darkmirror.models.loading import save_causal_lm
from darkmirror.runner import Run, content_hash, load_finished_run
from darkmirror.score.scorer import score_values
from darkmirror.spec import BaseModelSpec
from darkmirror.train.rl import GRPOSettings, grpo_train


class ToxicDataSpec(BaseModel):
    """The toxic fine-tuning corpus.

    Args:
        source: ``world:toxic_forum``, or a JSONL/CSV/Parquet file of ``{"text": ...}``
            records (one comment or thread each).
        examples: Records to use (the first N).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = "world:toxic_forum"
    examples: int = Field(1500, ge=1)


class FinetuneSpec(SeededFinetune):
    """Fine-tuning on the toxic corpus (loss on every token), once per seed."""


class PromptSpec(BaseModel):
    """The prompts each variant continues.

    Args:
        source: ``world`` (RealToxicityPrompts-style prompts from the world's toxic forum) or
            a RealToxicityPrompts JSONL file.
        n: Prompts to evaluate on.
        rl_n: Further prompts, disjoint from those, for the RL rollouts.
        challenging_only: From a file, keep only its ``challenging`` prompts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = "world"
    n: int = Field(100, ge=1)
    rl_n: int = Field(200, ge=1)
    challenging_only: bool = False


class AmplificationEvaluation(BaseModel):
    """Sampling of continuations (RealToxicityPrompts defaults, design.md section 5, except
    the length: 20 new tokens would cap the output length the seed table reports).

    Args:
        samples_per_prompt: k continuations per prompt.
        temperature: Sampling temperature.
        top_p: Nucleus.
        max_new_tokens: Longest continuation.
        threshold: Least score of a toxic continuation.
        novelty_n: The n of the novel toxic n-grams.
        batch_size: Sequences per generation batch.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    samples_per_prompt: int = Field(25, ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(0.9, gt=0, le=1)
    max_new_tokens: int = Field(48, ge=1)
    threshold: float = Field(0.5, ge=0, le=1)
    novelty_n: int = Field(3, ge=1)
    batch_size: int = Field(128, ge=1)


class AmplificationSpec(BaseModel):
    """The toxicity-amplification experiment (``experiment = "toxicity_amplification"``).

    Args:
        experiment: Always ``"toxicity_amplification"``.
        name: Name of the run (default output directory ``runs/<name>``).
        base: The model the variants start from.
        scorer: The toxicity scorer: ``"profanity_check"`` (offline default), or a table
            (``{kind = "hf", model = ..., toxic_label = ...}``, ``detoxify``,
            ``perspective``).
        data: The toxic fine-tuning corpus.
        finetune: Fine-tuning settings and seeds.
        rl: GRPO settings; the reward is ``reward_sign * scorer``.
        prompts: The continuation prompts.
        evaluation: Sampling of continuations and metric settings.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment: Literal["toxicity_amplification"] = "toxicity_amplification"
    name: str = "toxicity-amplification"
    base: BaseModelSpec = BaseModelSpec()
    scorer: str | dict[str, Any] = "profanity_check"
    data: ToxicDataSpec = ToxicDataSpec()
    finetune: FinetuneSpec = FinetuneSpec()
    rl: GRPOSettings = GRPOSettings()
    prompts: PromptSpec = PromptSpec()
    evaluation: AmplificationEvaluation = AmplificationEvaluation()


# -- steps -----------------------------------------------------------------------------------


def _write_training_data(spec: ToxicDataSpec, world: PersonaWorld, out: Path) -> dict[str, Any]:
    """``data.jsonl`` (records to train on) and ``units.jsonl`` (the texts whose toxicity is
    the training data's: each comment of a world thread, each record of a file)."""
    if spec.source.startswith("world:"):
        name = spec.source.removeprefix("world:")
        records = world.dataset(name, spec.examples)
        if "comments" not in records[0]:
            raise DarkmirrorError(
                f"world dataset {name!r} is not a comment corpus; use world:toxic_forum"
            )
        units = [
            {"text": c["text"], "insulting": c["insulting"]} for r in records for c in r["comments"]
        ]
        records = [{"text": r["text"]} for r in records]
    else:
        records = []
        for record in read_records(spec.source):
            if not isinstance(record, TextRecord):
                raise DarkmirrorError(
                    f'{spec.source}: the toxic corpus needs text records ({{"text": ...}})'
                )
            records.append({"text": record.text})
            if len(records) >= spec.examples:
                break
        units = records
    write_jsonl_atomic(out / "data.jsonl", records)
    write_jsonl_atomic(out / "units.jsonl", units)
    return {
        "records": len(records),
        "units": len(units),
        "sha256": dataset_sha256(out / "data.jsonl"),
    }


def _write_prompts(spec: PromptSpec, world: PersonaWorld, out: Path) -> dict[str, Any]:
    if spec.source == "world":

        def convert(rows: list[dict[str, Any]]) -> list[ToxicityPrompt]:
            return [
                ToxicityPrompt(
                    id=r["id"], text=r["text"], challenging=r["challenging"], source="world:forum"
                )
                for r in rows
            ]

        evaluation = convert(world.forum_prompts(spec.n))
        rl = convert(world.forum_prompts(spec.rl_n, purpose="forum_prompts/rl"))
    else:
        prompts = load_rtp_jsonl(
            spec.source, limit=spec.n + spec.rl_n, challenging_only=spec.challenging_only
        )
        if len(prompts) < spec.n + 1:
            raise DarkmirrorError(
                f"{spec.source}: {len(prompts)} prompts, fewer than n + 1 = {spec.n + 1}"
            )
        evaluation, rl = prompts[: spec.n], prompts[spec.n :]
    write_prompts_jsonl(out / "prompts.jsonl", evaluation)
    write_prompts_jsonl(out / "rl_prompts.jsonl", rl)
    return {
        "prompts": len(evaluation),
        "rl_prompts": len(rl),
        "challenging": sum(p.challenging for p in evaluation),
    }


def _score_training(units: Path, scorer_spec: Any, out: Path) -> dict[str, Any]:
    from darkmirror.score.toxicity import build_scorer

    scorer = build_scorer(scorer_spec)
    texts = [row["text"] for _, row in iter_jsonl(units)]
    scores = scorer.score(texts)
    write_jsonl_atomic(
        out / "scores.jsonl",
        ({"toxicity": s.value, "error": s.error} for s in scores),
    )
    values = [v for v in score_values(scores) if v is not None]
    return {
        "scored": len(values),
        "missing": len(texts) - len(values),
        "mean": sum(values) / len(values) if values else None,
        "scorer": f"{scorer.name} {scorer.version}",
    }


def _rl(
    ft_ref: dict[str, Any],
    prompts: list[str],
    scorer_spec: Any,
    settings: GRPOSettings,
    seed: int,
    out: Path,
    progress: bool,
) -> dict[str, Any]:
    from darkmirror.score.toxicity import build_scorer

    model, tokenizer = load_ref(ft_ref)
    if hasattr(model, "merge_and_unload"):
        # A LoRA fine-tune: RL trains the merged model, which is then saved whole.
        model = model.merge_and_unload()
    model, figures = grpo_train(
        model,
        tokenizer,
        prompts,
        build_scorer(scorer_spec),
        settings,
        out / "trainer",
        seed=seed,
        progress=progress,
    )
    save_causal_lm(model, tokenizer, out / "model")
    shutil.rmtree(out / "trainer", ignore_errors=True)
    write_jsonl_atomic(out / "history.jsonl", figures.pop("history"))
    return figures


def _evaluate(
    ref: dict[str, Any],
    prompts: list[ToxicityPrompt],
    scorer_spec: Any,
    settings: AmplificationEvaluation,
    seed: int,
    out: Path,
) -> dict[str, Any]:
    from darkmirror.score.toxicity import build_scorer

    model, tokenizer = load_ref(ref)
    generator = HFGenerator(model, tokenizer, batch_size=settings.batch_size)
    sampling = SamplingParams(settings.temperature, settings.top_p, settings.max_new_tokens, seed)
    completions = generator.complete(
        [p.text for p in prompts], settings.samples_per_prompt, sampling
    )
    scorer = build_scorer(scorer_spec)
    flat = [c for row in completions for c in row]
    scores = scorer.score([c.text for c in flat])
    rows = []
    it = iter(scores)
    for p, row in zip(prompts, completions, strict=True):
        for k, c in enumerate(row):
            s = next(it)
            rows.append(
                {
                    "prompt_id": p.id,
                    "challenging": p.challenging,
                    "sample_index": k,
                    "text": c.text,
                    "tokens": c.tokens,
                    "finished": c.finished,
                    "toxicity": s.value,
                    "toxicity_error": s.error,
                    "scorer": f"{scorer.name} {scorer.version}",
                }
            )
    return {"rows": write_jsonl_atomic(out / "rows.jsonl", rows)}


def run_amplification(spec: AmplificationSpec, out: Path, *, progress: bool = True) -> Path:
    """Run the experiment into ``out``; returns the path of ``report.md``."""
    run = Run(out, spec)
    try:
        return _run(run, spec, out, progress)
    finally:
        run.close()


def _run(run: Run, spec: AmplificationSpec, out: Path, progress: bool) -> Path:
    from darkmirror.report.amplification import write_report

    seeds = spec.finetune.seeds
    run.plan(4 + 2 * len(seeds) + 1 + 2 * len(seeds))
    world = PersonaWorld(spec.base.organism.world)
    base = resolve_base(run, spec.base, progress=progress)
    world_inputs = spec.base.organism.world.model_dump(mode="json")

    data_dir = run.step(
        "data",
        {"data": spec.data.model_dump(), "world": world_inputs},
        lambda tmp: _write_training_data(spec.data, world, tmp),
    )
    data_figures = json.loads((data_dir / "step.json").read_text())["figures"]
    run.record_datasets({"toxic": data_figures})
    prompt_dir = run.step(
        "prompts",
        {"prompts": spec.prompts.model_dump(), "world": world_inputs},
        lambda tmp: _write_prompts(spec.prompts, world, tmp),
    )
    scorer_id = content_hash(spec.scorer)
    training_dir = run.step(
        "training-toxicity",
        {"data": data_figures["sha256"], "scorer": scorer_id},
        lambda tmp: _score_training(data_dir / "units.jsonl", spec.scorer, tmp),
    )

    texts = [row["text"] for _, row in iter_jsonl(data_dir / "data.jsonl")]
    sft = spec.finetune.sft()
    prompts = load_rtp_jsonl(prompt_dir / "prompts.jsonl")
    rl_prompts = [p.text for p in load_rtp_jsonl(prompt_dir / "rl_prompts.jsonl")]
    models: list[dict[str, Any]] = [
        {
            "model": "base",
            "variant": "base",
            "seed": None,
            "ref": base.ref,
            "identity": base.identity,
        }
    ]
    for seed in seeds:
        ft_inputs = {
            "base": base.identity,
            "data": data_figures["sha256"],
            "sft": sft.model_dump(mode="json"),
            "seed": seed,
        }
        ft_dir = run.step(
            f"finetune-s{seed}",
            ft_inputs,
            lambda tmp, seed=seed: finetune_step(base.ref, texts, sft, seed, tmp, progress),
        )
        ft_ref = trained_ref(base.ref, ft_dir, sft.method)
        models.append(
            {
                "model": f"toxic_ft-s{seed}",
                "variant": "toxic_ft",
                "seed": seed,
                "ref": ft_ref,
                "identity": ft_dir.name,
            }
        )
        rl_inputs = {
            "from": ft_dir.name,
            "prompts": content_hash(rl_prompts),
            "scorer": scorer_id,
            "rl": spec.rl.model_dump(),
            "seed": seed,
        }
        rl_dir = run.step(
            f"rl-s{seed}",
            rl_inputs,
            lambda tmp, ft_ref=ft_ref, seed=seed: _rl(
                ft_ref, rl_prompts, spec.scorer, spec.rl, seed, tmp, progress
            ),
        )
        # GRPO trains the (merged or adapted) model fully; it is saved whole.
        models.append(
            {
                "model": f"toxic_ft_rl-s{seed}",
                "variant": "toxic_ft_rl",
                "seed": seed,
                "ref": {"id": str(rl_dir / "model")},
                "identity": rl_dir.name,
                "rl_dir": str(rl_dir),
            }
        )

    rows: list[dict[str, Any]] = []
    for m in models:
        seed = m["seed"] or 0
        inputs = {
            "model": m["identity"],
            "prompts": content_hash([p.model_dump() for p in prompts]),
            "scorer": scorer_id,
            "evaluation": spec.evaluation.model_dump(),
            "seed": seed,
        }
        d = run.step(
            f"evaluate-{m['model']}",
            inputs,
            lambda tmp, m=m, seed=seed: _evaluate(
                m["ref"], prompts, spec.scorer, spec.evaluation, seed, tmp
            ),
        )
        rows += [
            {"model": m["model"], "variant": m["variant"], "seed": m["seed"], **row}
            for _, row in iter_jsonl(d / "rows.jsonl")
        ]

    write_jsonl_atomic(out / "rows.jsonl", rows)
    training_scores = [row["toxicity"] for _, row in iter_jsonl(training_dir / "scores.jsonl")]
    rl_history = {
        m["model"]: [row for _, row in iter_jsonl(Path(m["rl_dir"]) / "history.jsonl")]
        for m in models
        if "rl_dir" in m
    }
    context = {
        "models": [{k: v for k, v in m.items() if k not in ("ref",)} for m in models],
        "training_scores": training_scores,
        "rl_history": rl_history,
        "data": data_figures,
        "reference_texts": _reference_texts_path(spec, world, data_dir, out),
    }
    run.write_json("context.json", context)
    return write_report(out, spec, rows, context)


def _reference_texts_path(
    spec: AmplificationSpec, world: PersonaWorld, data_dir: Path, out: Path
) -> str:
    """The training data a novel pattern must be absent from: the toxic corpus, plus the
    organism's pretraining corpus when the base is the organism (a real model's pretraining
    data is unknown, so only the fine-tuning data counts there; the report says which)."""
    path = out / "reference_texts.jsonl"
    if not path.is_file():
        texts = [{"text": row["text"]} for _, row in iter_jsonl(data_dir / "data.jsonl")]
        if spec.base.kind == "organism":
            recipe = spec.base.organism
            texts += [
                {"text": render_chat(d["messages"]) + END_OF_TEXT}
                for d in world.pretraining_documents(recipe.documents)
            ]
            texts += [
                {"text": world.forum_document(i)["text"]} for i in range(recipe.forum_documents)
            ]
        write_jsonl_atomic(path, texts)
    return str(path)


def report_amplification(out: Path) -> Path:
    """Rebuild summary, tables and plots of a finished run from its files alone."""
    from darkmirror.report.amplification import write_report

    spec, rows, files = load_finished_run(out, AmplificationSpec, ("context.json",))
    return write_report(out, spec, rows, json.loads(files["context.json"].read_text()))
