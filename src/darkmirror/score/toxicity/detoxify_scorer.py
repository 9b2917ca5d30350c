"""A toxicity scorer from a local Detoxify checkpoint (optional extra)."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence
from pathlib import Path

from darkmirror.errors import DarkmirrorError
from darkmirror.score.scorer import Score, score_texts
from darkmirror.score.toxicity.local_model import DEFAULT_MAX_CHARS, files_sha256


def _describe(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


class DetoxifyScorer:
    """Detoxify's probability of one label, from a local checkpoint (optional extra).

    Detoxify downloads its checkpoints from the internet at run time when given none, so
    darkmirror only accepts a checkpoint file on disk (for example
    ``toxic_original-c1212f89.ckpt`` from the Detoxify releases page). Detoxify also loads
    the base model's config and tokenizer (``bert-base-uncased`` for ``original``) from
    the Hugging Face hub; offline, pass them as ``huggingface_config_path``. Detoxify
    reads the checkpoint with ``torch.load``: use checkpoints you trust.

    Args:
        checkpoint: Path of a Detoxify ``.ckpt`` file.
        model_type: Detoxify model type (``"original"``, ``"unbiased"``, ``"multilingual"``).
        device: Where to run.
        label: The output whose probability is the score (``"toxicity"``, ``"insult"``...).
        huggingface_config_path: Local directory with the base model's config and
            tokenizer files, for offline use.
        batch_size: Texts per forward pass.
        max_chars: Longest text scored; longer ones are missing.

    Raises:
        DarkmirrorError: detoxify is not installed, the checkpoint is not a local file or
            does not load, or the model has no such label.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        model_type: str = "original",
        device: str = "cpu",
        label: str = "toxicity",
        huggingface_config_path: str | Path | None = None,
        batch_size: int = 32,
        max_chars: int = DEFAULT_MAX_CHARS,
    ) -> None:
        try:
            import detoxify
        except ImportError:
            raise DarkmirrorError(
                "DetoxifyScorer needs the detoxify package: pip install 'darkmirror[detoxify]'"
            ) from None
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise DarkmirrorError(
                f"Detoxify checkpoint '{checkpoint}' is not a local file. Detoxify would "
                "download it at run time, which darkmirror does not do: download the .ckpt "
                "from https://github.com/unitaryai/detoxify/releases where you have network "
                "access and pass its path"
            )
        try:
            self._detoxify = detoxify.Detoxify(
                model_type=model_type,
                checkpoint=str(path),
                device=device,
                huggingface_config_path=(
                    None if huggingface_config_path is None else str(huggingface_config_path)
                ),
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise DarkmirrorError(
                f"could not load Detoxify checkpoint '{checkpoint}': {_describe(exc)} "
                "(offline, pass huggingface_config_path with the base model's config and "
                "tokenizer files)"
            ) from None
        labels = list(getattr(self._detoxify, "class_names", []))
        if label not in labels:
            raise DarkmirrorError(
                f"Detoxify checkpoint '{checkpoint}' has no label {label!r}; its labels are "
                f"{', '.join(labels)}"
            )
        self.label = label
        self.model_type = model_type
        self.batch_size = batch_size
        self.max_chars = max_chars
        try:
            package_version = importlib.metadata.version("detoxify")
        except importlib.metadata.PackageNotFoundError:
            package_version = getattr(detoxify, "__version__", "unknown")
        self._version = f"detoxify {package_version}; {path.name} sha256:{files_sha256([path])}"

    @property
    def name(self) -> str:
        """``detoxify:<model_type>:<label>``, written into every result row."""
        return f"detoxify:{self.model_type}:{self.label}"

    @property
    def version(self) -> str:
        """The detoxify version and the checkpoint's digest."""
        return self._version

    def score(self, texts: Sequence[str]) -> list[Score]:
        """Probability of the configured label for each text.

        Args:
            texts: Texts to score; a non-string or overlong one is missing with the reason.
        """
        return score_texts(
            texts,
            lambda batch: self._detoxify.predict(batch)[self.label],
            scorer_name=self.name,
            max_chars=self.max_chars,
            batch_size=self.batch_size,
        )
