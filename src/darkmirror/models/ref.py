"""``ModelRef``: every way darkmirror can name a model, with its identity and its generator.

One reference type serves every experiment's base model, the stress test's model and
baseline, and the canary's reference:

* ``organism``: the model organism darkmirror builds and caches (its recipe);
* ``hf``: any Hugging Face causal LM, by hub id or local directory, with an optional PEFT
  adapter and revision, run in-process;
* ``openai``: a model behind an OpenAI-compatible endpoint (key from an environment
  variable, never a setting);
* ``vllm``: a hub id or directory served in-process by vLLM (optional extra, GPU);
* ``answers``: a file of answers another pipeline already produced (CSV or JSONL in the
  emergent-misalignment layout, or darkmirror's own ``rows.jsonl``), replayed instead of
  sampled, with the scores it holds.

A spec names a model by a table with ``kind`` and that kind's fields; ``kind`` may be
omitted where a default makes sense (``organism`` for an experiment's base, ``hf`` for a
stress-test model). :meth:`identity` is what the content hashes of dependent steps use, so
a model replaced on disk (or a changed answers file) is evaluated again.

Each backend is imported when its generator is made, not with this module: torch and
transformers, vLLM and the HTTP client load only for the models that need them, so a
comparison of two answer files starts without them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from darkmirror.hashing import directory_fingerprint, file_fingerprint
from darkmirror.models.answers_backend import AnswersFile
from darkmirror.models.openai_http import EndpointSettings
from darkmirror.models.organism_recipe import OrganismRecipe
from darkmirror.resources import Resources

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from darkmirror.models.generation import Generator

__all__ = [
    "AnswersModel",
    "BaseRef",
    "HFModel",
    "LocalModelRef",
    "ModelRef",
    "OpenAIModel",
    "OrganismModel",
    "VLLMModel",
]


class _Ref(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str | None = None

    @property
    def display(self) -> str:
        """The model's name in tables: the label, else what identifies it."""
        return self.label or self._default_label()

    def _default_label(self) -> str:
        raise NotImplementedError

    def identity(self) -> dict[str, Any]:
        """What the hashes of dependent steps use (the label and batch size excluded)."""
        return self.model_dump(mode="json", exclude={"label", "batch_size"})

    def resources(self) -> Resources:
        """What sampling from this model asks of a scheduler: a GPU for a local model
        (where there is one), nothing special for an endpoint or a file."""
        return Resources(cpus=1.0, gpus=1.0)


class OrganismModel(_Ref):
    """The model organism (built once per recipe, then reused from the cache).

    Args:
        kind: Always ``"organism"``.
        organism: The recipe; the defaults give the standard organism.
        label: Name in tables (default ``organism``).
        batch_size: Sequences per generation batch.
    """

    kind: Literal["organism"] = "organism"
    organism: OrganismRecipe = OrganismRecipe()
    batch_size: int = Field(128, ge=1)

    def _default_label(self) -> str:
        return "organism"

    def identity(self) -> dict[str, Any]:
        return {"kind": "organism", "organism": self.organism.key(), "files": None}

    def path(self, *, progress: bool = False) -> Path:
        """The post-trained organism's directory (built if it is not in the cache)."""
        from darkmirror.models.organism import build_organism

        return build_organism(self.organism, progress=progress).base_path

    def load(self, *, progress: bool = False) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        """The model and its tokenizer, in-process."""
        from darkmirror.models.loading import load_causal_lm

        return load_causal_lm(self.path(progress=progress))

    def generator(self, *, progress: bool = False) -> Generator:
        from darkmirror.models.hf_generator import HFGenerator

        model, tokenizer = self.load(progress=progress)
        return HFGenerator(model, tokenizer, batch_size=self.batch_size, name=self.display)


class HFModel(_Ref):
    """Any Hugging Face causal LM, run in-process.

    Args:
        kind: Always ``"hf"``.
        id: A hub id or a local directory (safetensors weights only).
        adapter: A PEFT adapter (directory or hub id) applied on top.
        revision: For hub ids: branch, tag or commit.
        label: Name in tables (default: the id, with the adapter).
        batch_size: Sequences per generation batch.
    """

    kind: Literal["hf"] = "hf"
    id: str = Field(min_length=1)
    adapter: str | None = None
    revision: str | None = None
    batch_size: int = Field(128, ge=1)

    def _default_label(self) -> str:
        return self.id if not self.adapter else f"{self.id} + {self.adapter}"

    def identity(self) -> dict[str, Any]:
        data = super().identity()
        data["files"] = directory_fingerprint(self.id, self.adapter)
        return data

    def load(self, *, progress: bool = False) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        """The model (with its adapter) and its tokenizer, in-process."""
        from darkmirror.models.loading import load_causal_lm

        return load_causal_lm(self.id, adapter=self.adapter, revision=self.revision)

    def generator(self, *, progress: bool = False) -> Generator:
        from darkmirror.models.hf_generator import HFGenerator

        model, tokenizer = self.load(progress=progress)
        return HFGenerator(model, tokenizer, batch_size=self.batch_size, name=self.display)


class OpenAIModel(_Ref):
    """A model behind an OpenAI-compatible chat endpoint.

    Args:
        kind: Always ``"openai"``.
        model: The model name the endpoint serves.
        endpoint: Base URL, the environment variable holding the key, concurrency, retries.
        label: Name in tables (default ``<model> @ <base_url>``).
    """

    kind: Literal["openai"] = "openai"
    model: str = Field(min_length=1)
    endpoint: EndpointSettings

    def _default_label(self) -> str:
        return f"{self.model} @ {self.endpoint.base_url}"

    def resources(self) -> Resources:
        return Resources(cpus=1.0)

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "files": None}

    def generator(self, *, progress: bool = False) -> Generator:
        from darkmirror.models.openai_backend import OpenAIGenerator

        return OpenAIGenerator(self.model, self.endpoint, name=self.display, progress=progress)


class VLLMModel(_Ref):
    """A hub id or directory served in-process by vLLM (``pip install 'darkmirror[vllm]'``).

    Args:
        kind: Always ``"vllm"``.
        id: A hub id or a local directory.
        adapter: A LoRA adapter directory.
        tensor_parallel_size: GPUs of one node to shard the model over. Under the Ray
            executor the step then holds a placement group of that many GPUs, and vLLM
            starts its workers in it.
        label: Name in tables (default: the id).
    """

    kind: Literal["vllm"] = "vllm"
    id: str = Field(min_length=1)
    adapter: str | None = None
    tensor_parallel_size: int = Field(1, ge=1)

    def resources(self) -> Resources:
        tp = self.tensor_parallel_size
        return Resources(cpus=1.0, gpus=float(tp), gpu_bundles=tp if tp > 1 else 0)

    def _default_label(self) -> str:
        return self.id if not self.adapter else f"{self.id} + {self.adapter}"

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "files": directory_fingerprint(self.id, self.adapter)}

    def generator(self, *, progress: bool = False) -> Generator:
        from darkmirror.models.vllm_backend import VLLMGenerator

        return VLLMGenerator(
            self.id,
            adapter=self.adapter,
            name=self.display,
            tensor_parallel_size=self.tensor_parallel_size,
        )


class AnswersModel(_Ref):
    """Answers already produced elsewhere, replayed with the scores they hold.

    Args:
        kind: Always ``"answers"``.
        path: A CSV or JSONL file in the emergent-misalignment layout (``question``,
            ``answer``, ``question_id`` and optional judge scores such as ``aligned`` and
            ``coherent``), or a darkmirror ``rows.jsonl``.
        select: For a ``rows.jsonl`` holding several models: the ``model`` (or ``group``)
            whose rows to take.
        judge: Name recorded as the source of the file's scores (default
            ``file:<name of the file>``).
        label: Name in tables (default: the file's name, with ``select``).
    """

    kind: Literal["answers"] = "answers"
    path: str = Field(min_length=1)
    select: str | None = None
    judge: str | None = None

    def _default_label(self) -> str:
        name = Path(self.path).name
        return f"{name}:{self.select}" if self.select else name

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "files": file_fingerprint(self.path)}

    def resources(self) -> Resources:
        return Resources(cpus=1.0)

    def generator(self, *, progress: bool = False) -> Generator:
        return AnswersFile(self.path, name=self.display, select=self.select, judge=self.judge)


def _kind_or(default: str) -> Callable[[Any], str]:
    def discriminate(value: Any) -> str:
        if isinstance(value, dict):
            return str(value.get("kind", default))
        return str(getattr(value, "kind", default))

    return discriminate


def _union(default: str) -> Any:
    return Annotated[
        Annotated[OrganismModel, Tag("organism")]
        | Annotated[HFModel, Tag("hf")]
        | Annotated[OpenAIModel, Tag("openai")]
        | Annotated[VLLMModel, Tag("vllm")]
        | Annotated[AnswersModel, Tag("answers")],
        Discriminator(
            _kind_or(default),
            custom_error_type="invalid_kind",
            custom_error_message="expected kind 'organism', 'hf', 'openai', 'vllm' or 'answers'",
        ),
    ]


ModelRef = _union("hf")
"""Any model: a table with ``kind`` (default ``"hf"``) and that kind's fields."""

LocalModelRef = Annotated[
    Annotated[OrganismModel, Tag("organism")] | Annotated[HFModel, Tag("hf")],
    Discriminator(
        _kind_or("organism"),
        custom_error_type="invalid_kind",
        custom_error_message="expected kind 'organism' or 'hf' (a model darkmirror can fine-tune)",
    ),
]
"""A model darkmirror can load and fine-tune in-process (default kind ``"organism"``)."""

BaseRef = OrganismModel | HFModel
"""The type of a validated :data:`LocalModelRef`."""
