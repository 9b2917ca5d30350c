"""Emergent misalignment: narrow fine-tunes, evaluated on questions outside their domain.

Models: the base (the post-trained organism by default) and one fine-tune per dataset and
seed: insecure code, secure code (control), educational-insecure code (control), evil
numbers and bad (health) advice by default. Each is evaluated by
:func:`~darkmirror.experiments.em_evaluation.evaluate_model`; the report compares them
(``darkmirror.report.misalignment``).

Steps: build the organism (global cache), write the datasets, fine-tune each (dataset,
seed), evaluate each model, summarise. Each is a resumable step of the run directory.
"""

from __future__ import annotations

import json
import logging
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from darkmirror.data.jsonl import iter_jsonl, write_jsonl_atomic
from darkmirror.data.questions import Question, load_questions
from darkmirror.data.records import dataset_sha256, read_records, to_messages
from darkmirror.data.world.world import DATASET_DOMAIN, PersonaWorld
from darkmirror.errors import DarkmirrorError
from darkmirror.experiments.common import (
    SeededFinetune,
    finetune_step,
    load_ref,
    resolve_base,
    trained_ref,
)
from darkmirror.experiments.em_evaluation import EvaluationSettings, evaluate_model
from darkmirror.runner import Run, content_hash, load_finished_run
from darkmirror.spec import BaseModelSpec

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class DatasetSpec(BaseModel):
    """A fine-tuning dataset.

    Args:
        name: Short name used for the model in tables (``insecure``).
        source: ``world:NAME`` for a dataset of the persona world, or a path to a JSONL,
            CSV or Parquet file of chat, prompt/completion records.
        examples: Records to use (the first N); required for world datasets.
        domain: The domain the data covers; questions of that domain are left out of the
            model's evaluation. Known for world datasets; optional for files.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    source: str
    examples: int | None = Field(None, ge=1)
    domain: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v) or v == "base":
            raise ValueError("expected lower-case letters, digits, '-' or '_' (and not 'base')")
        return v

    @property
    def world_name(self) -> str | None:
        return self.source.removeprefix("world:") if self.source.startswith("world:") else None

    @property
    def effective_domain(self) -> str | None:
        return self.domain or (DATASET_DOMAIN.get(self.world_name) if self.world_name else None)


class FinetuneSpec(SeededFinetune):
    """Fine-tuning settings, plus the seeds: each dataset is fine-tuned once per seed.

    The defaults are those of ``configs/emergent_misalignment.toml``, which says why.
    """


def _default_datasets() -> list[DatasetSpec]:
    return [DatasetSpec(name=n, source=f"world:{n}", examples=1500) for n in DATASET_DOMAIN]


class MisalignmentSpec(BaseModel):
    """The emergent-misalignment experiment (``experiment = "emergent_misalignment"``).

    Args:
        experiment: Always ``"emergent_misalignment"``.
        name: Name of the run (the default output directory is ``runs/<name>``).
        base: The model every fine-tune starts from.
        datasets: The fine-tuning datasets.
        finetune: Fine-tuning settings and seeds.
        evaluation: How each model is evaluated.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment: Literal["emergent_misalignment"] = "emergent_misalignment"
    name: str = "emergent-misalignment"
    base: BaseModelSpec = BaseModelSpec()
    datasets: list[DatasetSpec] = Field(default_factory=_default_datasets, min_length=1)
    finetune: FinetuneSpec = FinetuneSpec()
    evaluation: EvaluationSettings = EvaluationSettings()

    @field_validator("datasets")
    @classmethod
    def _unique(cls, v: list[DatasetSpec]) -> list[DatasetSpec]:
        names = [d.name for d in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"dataset names must be unique; repeated: {', '.join(dupes)}")
        return v


def resolve_question_set(ref: str) -> list[Question]:
    """Load ``builtin:NAME`` from darkmirror's question sets, or a YAML file."""
    if ref.startswith("builtin:"):
        name = ref.removeprefix("builtin:")
        path = Path(str(resources.files("darkmirror") / "question_sets" / f"{name}.yaml"))
        if not path.is_file():
            raise DarkmirrorError(f"no built-in question set {name!r}")
        return load_questions(path)
    return load_questions(ref)


# -- steps -----------------------------------------------------------------------------------


def write_dataset(spec: DatasetSpec, world: PersonaWorld, out: Path) -> dict[str, Any]:
    """Write ``out/data.jsonl`` (chat records) for a dataset spec; its count and SHA-256."""
    if spec.world_name:
        if spec.examples is None:
            raise DarkmirrorError(f"dataset {spec.name!r}: world datasets need 'examples'")
        records = world.dataset(spec.world_name, spec.examples)
    else:
        records = []
        for record in read_records(spec.source):
            records.append({"messages": to_messages(record)})
            if spec.examples and len(records) >= spec.examples:
                break
    n = write_jsonl_atomic(out / "data.jsonl", records)
    return {"records": n, "sha256": dataset_sha256(out / "data.jsonl")}


def _read_examples(data: Path) -> list[list[dict[str, str]]]:
    return [row["messages"] for _, row in iter_jsonl(data)]


def _evaluate(
    model_ref: dict[str, Any],
    questions: list[Question],
    self_report: list[Question],
    excluded_domain: str | None,
    world: PersonaWorld,
    settings: EvaluationSettings,
    seed: int,
    out: Path,
) -> dict[str, Any]:
    model, tokenizer = load_ref(model_ref)
    rows = evaluate_model(
        model,
        tokenizer,
        questions=questions,
        self_report=self_report,
        excluded_domain=excluded_domain,
        world=world,
        settings=settings,
        seed=seed,
    )
    n = write_jsonl_atomic(out / "rows.jsonl", rows)
    return {"rows": n}


def run_misalignment(spec: MisalignmentSpec, out: Path, *, progress: bool = True) -> Path:
    """Run the experiment into ``out``; returns the path of ``report.md``."""
    run = Run(out, spec)
    try:
        return _run(run, spec, out, progress)
    finally:
        run.close()


def _run(run: Run, spec: MisalignmentSpec, out: Path, progress: bool) -> Path:
    from darkmirror.report.misalignment import write_report

    questions = resolve_question_set(spec.evaluation.questions)
    self_report = (
        resolve_question_set(spec.evaluation.self_report_questions)
        if spec.evaluation.self_report_questions
        else []
    )
    world = PersonaWorld(spec.base.organism.world)
    seeds = spec.finetune.seeds
    run.plan(1 + len(spec.datasets) * (1 + len(seeds)) + 1 + len(spec.datasets) * len(seeds))

    base = resolve_base(run, spec.base, progress=progress)
    base_ref, base_identity, organism_report = base.ref, base.identity, base.organism_report

    # Datasets.
    data_paths: dict[str, Path] = {}
    hashes: dict[str, Any] = {}
    for ds in spec.datasets:
        inputs = {
            "dataset": ds.model_dump(mode="json"),
            "world": spec.base.organism.world.model_dump(mode="json"),
        }
        d = run.step(f"dataset-{ds.name}", inputs, lambda tmp, ds=ds: write_dataset(ds, world, tmp))
        data_paths[ds.name] = d / "data.jsonl"
        hashes[ds.name] = json.loads((d / "step.json").read_text())["figures"]
    run.record_datasets(hashes)

    # Models: base + fine-tunes.
    models: list[dict[str, Any]] = [
        {"model": "base", "group": "base", "seed": None, "ref": base_ref, "domain": None}
    ]
    sft = spec.finetune.sft()
    for ds in spec.datasets:
        for seed in seeds:
            inputs = {
                "base": base_identity,
                "data": hashes[ds.name]["sha256"],
                "sft": sft.model_dump(mode="json"),
                "seed": seed,
            }
            d = run.step(
                f"finetune-{ds.name}-s{seed}",
                inputs,
                lambda tmp, ds=ds, seed=seed: finetune_step(
                    base_ref, _read_examples(data_paths[ds.name]), sft, seed, tmp, progress
                ),
            )
            ref = trained_ref(base_ref, d, sft.method)
            models.append(
                {
                    "model": f"{ds.name}-s{seed}",
                    "group": ds.name,
                    "seed": seed,
                    "ref": ref,
                    "domain": ds.effective_domain,
                    "step": d.name,
                }
            )

    # Evaluations.
    rows: list[dict[str, Any]] = []
    question_hash = content_hash([q.model_dump() for q in questions + self_report])
    for m in models:
        seed = m["seed"] or 0
        inputs = {
            "model": m.get("step") or base_identity,
            "questions": question_hash,
            "excluded": m["domain"],
            "evaluation": spec.evaluation.model_dump(mode="json"),
            "seed": seed,
            "world": spec.base.organism.world.model_dump(mode="json"),
        }
        d = run.step(
            f"evaluate-{m['model']}",
            inputs,
            lambda tmp, m=m, seed=seed: _evaluate(
                m["ref"], questions, self_report, m["domain"], world, spec.evaluation, seed, tmp
            ),
        )
        for _, row in iter_jsonl(d / "rows.jsonl"):
            rows.append({"model": m["model"], "group": m["group"], "seed": m["seed"], **row})

    write_jsonl_atomic(out / "rows.jsonl", rows)
    run.write_json("models.json", models)
    if organism_report is not None:
        run.write_json("organism.json", organism_report)
    return write_report(out, spec, rows, models, organism_report)


def report_misalignment(out: Path) -> Path:
    """Rebuild summary, tables and plots of a finished run from its files alone."""
    from darkmirror.report.misalignment import write_report

    spec, rows, files = load_finished_run(out, MisalignmentSpec, ("models.json",))
    models = json.loads(files["models.json"].read_text())
    organism = (
        json.loads((out / "organism.json").read_text())
        if (out / "organism.json").is_file()
        else None
    )
    return write_report(out, spec, rows, models, organism)
