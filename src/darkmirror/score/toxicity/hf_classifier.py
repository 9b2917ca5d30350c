"""A toxicity scorer from any Hugging Face text-classification model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from darkmirror.errors import DarkmirrorError
from darkmirror.score.scorer import Score, score_texts
from darkmirror.score.toxicity.local_model import DEFAULT_MAX_CHARS, files_sha256


class HFClassifierScorer:
    """Probability of a toxic label from any Hugging Face text-classification model.

    Weights load from safetensors only. Probabilities are a softmax over the labels, or a
    sigmoid per label when the config's ``problem_type`` is
    ``"multi_label_classification"`` (or the model has a single label). Texts longer than
    the model's context are truncated to its first tokens.

    Args:
        model: A hub id (``"org/name"``) or a local directory.
        toxic_label: The label whose probability is the score, from the config's
            ``id2label`` (matched case-insensitively when the exact name is absent).
        batch_size: Texts per forward pass; texts are grouped by length.
        device: Where to run; CUDA when available, else the CPU.
        max_chars: Longest text scored; longer ones are missing.

    Raises:
        DarkmirrorError: The model cannot be found or reached, has no safetensors weights,
            or has no such label (the message lists its labels).
    """

    def __init__(
        self,
        model: str | Path,
        toxic_label: str = "toxic",
        batch_size: int = 32,
        device: str | None = None,
        max_chars: int = DEFAULT_MAX_CHARS,
    ) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        # Same rules and messages as causal LMs: one place says how to work offline.
        from darkmirror.models.loading import HUB_ADVICE, first_line, looks_like_path

        ref = str(model)
        local = Path(ref).expanduser()
        if looks_like_path(ref) and not local.is_dir():
            raise DarkmirrorError(f"classifier directory '{ref}' does not exist")
        source = str(local) if local.is_dir() else ref
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(source)
            self._model = AutoModelForSequenceClassification.from_pretrained(
                source, use_safetensors=True
            )
        except OSError as exc:
            if local.is_dir():
                raise DarkmirrorError(
                    f"could not load a text classifier from '{ref}': {first_line(exc)} "
                    "(darkmirror loads safetensors weights only)"
                ) from None
            raise DarkmirrorError(
                f"could not load classifier '{ref}': {first_line(exc)}. "
                + HUB_ADVICE.format(ref=ref)
            ) from None
        config = self._model.config
        self._label_index = _label_index(ref, config.id2label, toxic_label)
        self.toxic_label = config.id2label[self._label_index]
        self._sigmoid = (
            config.problem_type == "multi_label_classification" or config.num_labels == 1
        )
        limits = [
            n
            for n in (
                self._tokenizer.model_max_length,
                getattr(config, "max_position_embeddings", None),
            )
            if isinstance(n, int) and 0 < n < 1_000_000  # tokenizers without a limit say 1e30
        ]
        self._max_length = min(limits) if limits else None
        self.batch_size = batch_size
        if self._tokenizer.pad_token is None:
            if self._tokenizer.eos_token is None:
                self.batch_size = 1  # nothing to pad with: one text per forward pass
            else:
                self._tokenizer.pad_token = self._tokenizer.eos_token
                config.pad_token_id = self._tokenizer.eos_token_id
        self.model_ref = ref
        self.max_chars = max_chars
        self._device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._model.to(self._device).eval()
        if local.is_dir():
            weights_dir = local
        else:
            from transformers.utils import cached_file

            weights_dir = Path(cached_file(ref, "config.json")).parent  # the hub snapshot
        self._version = f"sha256:{files_sha256(sorted(weights_dir.glob('*.safetensors')))}"

    @property
    def name(self) -> str:
        """``hf:<model>:<label>``, written into every result row."""
        return f"hf:{self.model_ref}:{self.toxic_label}"

    @property
    def version(self) -> str:
        """``sha256:<digest>`` of the safetensors weights, so a changed model shows."""
        return self._version

    def score(self, texts: Sequence[str]) -> list[Score]:
        """Probability of the toxic label for each text.

        Args:
            texts: Texts to score; a non-string or overlong one is missing with the reason.
        """
        return score_texts(
            texts,
            self._probabilities,
            scorer_name=self.name,
            max_chars=self.max_chars,
            batch_size=self.batch_size,
        )

    def _probabilities(self, texts: list[str]) -> list[float]:
        import torch

        inputs = self._tokenizer(
            texts,
            padding=True,
            truncation=self._max_length is not None,
            max_length=self._max_length,
            return_tensors="pt",
        ).to(self._device)
        with torch.inference_mode():
            logits = self._model(**inputs).logits.float()
        probs = torch.sigmoid(logits) if self._sigmoid else torch.softmax(logits, dim=-1)
        return probs[:, self._label_index].tolist()


def _label_index(model: str, id2label: Mapping[int, str], wanted: str) -> int:
    for index, label in id2label.items():
        if label == wanted:
            return int(index)
    folded = [int(i) for i, label in id2label.items() if label.lower() == wanted.lower()]
    if len(folded) == 1:
        return folded[0]
    labels = ", ".join(repr(label) for label in id2label.values())
    raise DarkmirrorError(
        f"classifier '{model}' has no label {wanted!r}; its labels are {labels} "
        "(set toxic_label to one of them)"
    )
