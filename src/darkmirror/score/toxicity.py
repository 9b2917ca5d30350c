"""Toxicity scorers: an offline default, local classifiers, and the Perspective API.

Every scorer here implements :class:`~darkmirror.score.scorer.Scorer`; toxicity metrics
(expected maximum toxicity, amplification ratio, novel toxic patterns) compare numbers
only from the same scorer ``name`` and ``version``.

- :class:`ProfanityCheckScorer` (the default): alt-profanity-check's linear
  offensive-language classifier; offline, ~100k texts/s, with exact attribution.
- :class:`HFClassifierScorer`: any Hugging Face text-classification model.
- :class:`DetoxifyScorer`: Detoxify from a local checkpoint (optional extra).
- :class:`PerspectiveScorer`: Google's Perspective API (optional; shuts down end of 2026).

:func:`build_scorer` builds one from a spec's configuration.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.metadata
import inspect
import ipaddress
import json
import logging
import math
import os
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from darkmirror.errors import DarkmirrorError
from darkmirror.score.scorer import Score, Scorer, score_texts, text_problem, word_ngrams

logger = logging.getLogger(__name__)

DEFAULT_MAX_CHARS = 100_000


@dataclass(frozen=True)
class LogOddsExplanation:
    """A text's mean calibrated log-odds split exactly into per-word contributions.

    Args:
        intercept: The part that does not depend on the text.
        words: Each distinct word of the text (as :func:`~darkmirror.score.scorer.word_ngrams`
            splits it) -> its contribution over all its occurrences; 0 for stop words and
            words outside the classifier's vocabulary.
    """

    intercept: float
    words: dict[str, float]

    @property
    def log_odds(self) -> float:
        """``intercept + sum(words.values())``: the mean calibrated log-odds."""
        return self.intercept + math.fsum(self.words.values())


class ProfanityCheckScorer:
    """alt-profanity-check's probability that a text is offensive. The offline default.

    This is an offensive-language classifier (insults, slurs, profanity), not a full
    toxicity model: it misses toxicity phrased in polite words and never reads context.
    Say so next to any number it produces. The package loads its own model, shipped in its
    wheel; darkmirror unpickles nothing itself.

    The model is a TF-IDF vectorizer over word unigrams (English stop words dropped, rows
    l2-normalised) followed by 5 linear SVMs, each calibrated with a sigmoid (Platt
    scaling); the probability is the mean of the 5 calibrated probabilities.

    Attribution is exact and additive, for the mean calibrated log-odds: fold k's
    calibrated probability is ``sigmoid(-(a_k * (w_k . x + c_k) + b_k))``, so its
    log-odds is affine in the TF-IDF vector ``x``, and so is their mean::

        mean_k L_k(x) = sum_j beta_j x_j + beta_0,
        beta_j = mean_k(-a_k w_kj),  beta_0 = mean_k(-a_k c_k - b_k)

    A word's contribution is ``beta_j x_j`` for its vocabulary entry j. The probability is
    a mean of sigmoids of the folds' log-odds, monotone in each, so a word with positive
    contribution raises it, but the contributions do not add up in probability space.

    Args:
        max_chars: Longest text scored; longer ones are missing (a 10 MB text would hold
            up the whole batch).

    Raises:
        DarkmirrorError: alt-profanity-check is not installed, or ships a model of another
            shape than the one described here.
    """

    def __init__(self, max_chars: int = DEFAULT_MAX_CHARS) -> None:
        try:
            from profanity_check import profanity_check as package
        except ImportError as exc:
            raise DarkmirrorError(
                f"ProfanityCheckScorer needs alt-profanity-check ({exc}): "
                "pip install alt-profanity-check"
            ) from None
        self.max_chars = max_chars
        self._version = importlib.metadata.version("alt-profanity-check")
        self._vectorizer = package.vectorizer
        self._model = package.model
        self._check_model_shape()
        weights, intercepts = [], []
        for fold in self._model.calibrated_classifiers_:
            svm, (calibration,) = fold.estimator, fold.calibrators
            scale = -float(calibration.a_)  # sklearn's sigmoid is expit(-(a*f + b))
            weights.append(scale * svm.coef_[0])
            intercepts.append(scale * float(svm.intercept_[0]) - float(calibration.b_))
        self._intercept = math.fsum(intercepts) / len(intercepts)
        beta = np.mean(weights, axis=0)
        idf = self._vectorizer.idf_
        # Per vocabulary word: its idf and beta * idf, so a contribution is
        # count * beta_j * idf_j / ||counts * idf||.
        self._terms: dict[str, tuple[float, float]] = {
            word: (float(idf[j]), float(beta[j] * idf[j]))
            for word, j in self._vectorizer.vocabulary_.items()
        }

    def _check_model_shape(self) -> None:
        # Exact attribution rests on these facts about the shipped model; a new release
        # that changes them must fail loudly instead of attributing wrongly.
        v, m = self._vectorizer, self._model
        expected = {
            "analyzer": "word",
            "ngram_range": (1, 1),
            "lowercase": True,
            "norm": "l2",
            "use_idf": True,
            "sublinear_tf": False,
            "binary": False,
            "strip_accents": None,
            "token_pattern": r"(?u)\b\w\w+\b",
            "tokenizer": None,
            "preprocessor": None,
        }
        params = v.get_params()
        wrong = [k for k, want in expected.items() if params.get(k) != want]
        folds = getattr(m, "calibrated_classifiers_", [])
        if (
            wrong
            or list(m.classes_) != [0, 1]
            or not folds
            or any(f.method != "sigmoid" or len(f.calibrators) != 1 for f in folds)
            or any(f.estimator.coef_.shape != (1, len(v.vocabulary_)) for f in folds)
        ):
            raise DarkmirrorError(
                f"alt-profanity-check {self._version} ships a model darkmirror does not know "
                f"(vectorizer settings {wrong or 'as expected'}; expected sigmoid-calibrated "
                "linear folds); install alt-profanity-check==1.9.1"
            )

    @property
    def name(self) -> str:
        """Scorer name written into every result row."""
        return "profanity_check"

    @property
    def version(self) -> str:
        """Installed alt-profanity-check version, written into every result row."""
        return self._version

    def score(self, texts: Sequence[str]) -> list[Score]:
        """Probability that each text is offensive, in one vectorizer call for the batch.

        Args:
            texts: Texts to score; an empty text scores (low), a non-string or an
                overlong one is missing with the reason.
        """
        return score_texts(
            texts, self._probabilities, scorer_name=self.name, max_chars=self.max_chars
        )

    def _probabilities(self, texts: list[str]) -> np.ndarray:
        # The package's own predict_prob computes the same numbers with a slower per-row loop.
        return self._model.predict_proba(self._vectorizer.transform(texts))[:, 1]

    def explain(self, text: str) -> LogOddsExplanation:
        """Split a text's mean calibrated log-odds exactly into word contributions.

        Args:
            text: The text to explain.
        """
        # The vectorizer's tokens are the runs of 2+ word characters of the lower-cased
        # text: exactly our words minus one-letter ones, which are not in its vocabulary.
        counts = Counter(word_ngrams(text, 1))
        known = [(w, c, *self._terms[w]) for w, c in counts.items() if w in self._terms]
        # The vectorizer's l2 norm over the whole row: every word's share depends on it.
        norm = math.sqrt(math.fsum((c * idf) ** 2 for _, c, idf, _ in known))
        words = dict.fromkeys(counts, 0.0)
        for word, count, _, weight in known:
            words[word] = count * weight / norm
        return LogOddsExplanation(self._intercept, words)

    def attribute_ngrams(self, text: str, n: int) -> dict[str, float]:
        """Exact attribution of each distinct n-gram of a text to its mean log-odds.

        An n-gram's attribution is the sum of the contributions (see :meth:`explain`) of
        its distinct words, each over all its occurrences in the text: what removing
        those words would take off the linear score before renormalisation, the same
        counterfactual :func:`~darkmirror.score.scorer.occlusion_attribution` measures.

        Args:
            text: The text to explain.
            n: Words per n-gram.
        """
        words = self.explain(text).words
        return {
            gram: math.fsum(words[w] for w in set(gram.split()))
            for gram in dict.fromkeys(word_ngrams(text, n))
        }


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
        self._version = f"sha256:{_sha256(sorted(weights_dir.glob('*.safetensors')))}"

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


def _sha256(paths: Iterable[Path]) -> str:
    """First 16 hex digits of the SHA-256 of the files' contents, in order."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()[:16]


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
        self._version = f"detoxify {package_version}; {path.name} sha256:{_sha256([path])}"

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


class _HTTPFailure(Exception):
    """A failed Perspective request; ``retryable`` says whether trying again may help."""

    def __init__(self, reason: str, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # urllib would resend the API key header to wherever a redirect points.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _TokenBucket:
    """At most ``rate`` requests per second on average, bursts of at most one."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._tokens = 1.0
        self._last = time.monotonic()

    def take(self) -> None:
        now = time.monotonic()
        self._tokens = min(1.0, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens < 1.0:
            time.sleep((1.0 - self._tokens) / self.rate)
            self._last = time.monotonic()
            self._tokens = 1.0
        self._tokens -= 1.0


class PerspectiveScorer:
    """Google's Perspective API score of one attribute (optional; never a default).

    Google announced that Perspective stops serving at the end of 2026: results from it
    cannot be reproduced after that, and its model may change without a version bump.

    The API key is read from an environment variable and sent in the ``X-Goog-Api-Key``
    header, never in the URL; it never appears in ``repr``, logs, errors or result rows,
    and redirects are not followed (they would carry the header elsewhere). Requests are
    rate-limited by a token bucket at ``qps``; HTTP 429, 5xx, timeouts and connection
    errors are retried with exponential back-off and jitter, after which the item is
    missing with the reason (``"HTTP 429 after 5 retries"``). Other 4xx answers and
    malformed bodies make the item missing at once. Comments are sent with
    ``doNotStore``.

    Args:
        api_key_env: Name of the environment variable that holds the key.
        attribute: The Perspective attribute scored (``"TOXICITY"``, ``"INSULT"``...).
        qps: Requests per second allowed (Perspective's default quota is 1).
        max_retries: Retries of a request after a retryable failure.
        timeout: Seconds to wait for one response.
        base_url: API root; https is required except for a server on this machine.
        languages: Languages of the texts (ISO 639-1 codes); None lets the API detect them.
        backoff_base: Seconds of the first back-off; doubles with each retry.
        backoff_max: Longest single back-off, in seconds.
        max_chars: Longest text sent (Perspective refuses comments over 20 KB).

    Raises:
        DarkmirrorError: The environment variable is unset or empty, or ``base_url`` is
            plain http to another machine.
    """

    def __init__(
        self,
        api_key_env: str = "PERSPECTIVE_API_KEY",
        attribute: str = "TOXICITY",
        qps: float = 1.0,
        max_retries: int = 5,
        timeout: float = 30,
        base_url: str = "https://commentanalyzer.googleapis.com/v1alpha1",
        languages: Sequence[str] | None = None,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        max_chars: int = 20_000,
    ) -> None:
        key = os.environ.get(api_key_env, "").strip()
        if not key:
            raise DarkmirrorError(
                f"PerspectiveScorer reads its API key from the environment variable "
                f"{api_key_env}, which is not set"
            )
        if qps <= 0:
            raise DarkmirrorError(f"PerspectiveScorer: qps must be positive, got {qps}")
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme != "https" and not (
            parsed.scheme == "http" and _is_local_host(parsed.hostname)
        ):
            raise DarkmirrorError(
                f"PerspectiveScorer: base_url {base_url!r} must use https (the API key "
                "travels with every request); plain http is allowed only to this machine"
            )
        self._key = key
        self.api_key_env = api_key_env
        self.attribute = attribute
        self.max_retries = max_retries
        self.timeout = timeout
        self.base_url = base_url.rstrip("/")
        self.languages = list(languages) if languages else None
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_chars = max_chars
        self._bucket = _TokenBucket(qps)
        self._opener = urllib.request.build_opener(_NoRedirect)

    def __repr__(self) -> str:
        return (
            f"PerspectiveScorer(api_key_env={self.api_key_env!r}, attribute={self.attribute!r}, "
            f"base_url={self.base_url!r})"
        )

    @property
    def name(self) -> str:
        """``perspective:<attribute>``, written into every result row."""
        return f"perspective:{self.attribute}"

    @property
    def version(self) -> str:
        """The API version in ``base_url`` (the service does not version its models)."""
        return urllib.parse.urlsplit(self.base_url).path.rstrip("/").rsplit("/", 1)[-1]

    def score(self, texts: Sequence[str]) -> list[Score]:
        """Perspective's summary score of the attribute for each text, one request each.

        Args:
            texts: Texts to score; a non-string, blank or overlong one is missing with
                the reason, without a request.
        """
        results = []
        for i, text in enumerate(texts):
            problem = text_problem(text, self.max_chars)
            if problem is None and not text.strip():  # type: ignore[union-attr]
                problem = "Perspective does not score empty text"
            results.append(
                Score.failed(problem) if problem else self._score_one(i, text)  # type: ignore[arg-type]
            )
        return results

    def _score_one(self, index: int, text: str) -> Score:
        body: dict[str, Any] = {
            "comment": {"text": text},
            "requestedAttributes": {self.attribute: {}},
            "doNotStore": True,
        }
        if self.languages:
            body["languages"] = self.languages
        payload = json.dumps(body).encode("utf-8")
        for attempt in range(self.max_retries + 1):
            self._bucket.take()
            try:
                return Score(self._parse(self._post(payload)))
            except _HTTPFailure as failure:
                reason = self._scrub(failure.reason)
                if not failure.retryable:
                    return Score.failed(reason)
                if attempt == self.max_retries:
                    if attempt:
                        reason += f" after {attempt} {'retry' if attempt == 1 else 'retries'}"
                    logger.warning("Perspective: item %d is missing: %s", index, reason)
                    return Score.failed(reason)
                # Jitter, so that clients that failed together do not retry together.
                delay = min(self.backoff_max, self.backoff_base * 2**attempt)
                delay *= 0.5 + random.random() / 2
                if failure.retry_after is not None:
                    delay = max(delay, min(failure.retry_after, self.backoff_max))
                logger.info(
                    "Perspective: item %d: %s; retry %d/%d in %.2f s",
                    index,
                    reason,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
                time.sleep(delay)
        raise AssertionError("unreachable")  # the loop returns on its last attempt

    def _post(self, payload: bytes) -> bytes:
        request = urllib.request.Request(
            f"{self.base_url}/comments:analyze",
            data=payload,
            headers={"Content-Type": "application/json", "X-Goog-Api-Key": self._key},
            method="POST",
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            code = exc.code
            detail = _error_message(exc)
            if code == 429 or code >= 500:
                retry_after = _seconds(exc.headers.get("Retry-After"))
                raise _HTTPFailure(f"HTTP {code}", True, retry_after) from None
            raise _HTTPFailure(f"HTTP {code}" + (f": {detail}" if detail else ""), False) from None
        except (OSError, http.client.HTTPException) as exc:  # URLError and timeouts included
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError) or isinstance(exc, TimeoutError):
                raise _HTTPFailure(f"timeout ({self.timeout} s)", True) from None
            raise _HTTPFailure(f"connection error ({type(exc).__name__}: {reason})", True) from None

    def _parse(self, raw: bytes) -> float:
        try:
            data = json.loads(raw)
            value = data["attributeScores"][self.attribute]["summaryScore"]["value"]
            value = float(value)
        except (ValueError, KeyError, TypeError) as exc:
            raise _HTTPFailure(
                f"malformed response ({type(exc).__name__}: {str(exc)[:200]})", False
            ) from None
        if not 0.0 <= value <= 1.0:
            raise _HTTPFailure(f"malformed response (score {value} outside 0..1)", False)
        return value

    def _scrub(self, reason: str) -> str:
        # An error body could echo the request; the key must never reach a result row.
        return reason.replace(self._key, "[API key]")


def _is_local_host(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        data = json.loads(exc.read())
        message = str(data["error"]["message"])
    except Exception:
        return ""
    return message[:200]


def _seconds(header: str | None) -> float | None:
    try:
        return max(0.0, float(header)) if header is not None else None
    except ValueError:
        return None  # an HTTP date: the exponential back-off decides


SCORER_KINDS: dict[str, Callable[..., Scorer]] = {
    "profanity_check": ProfanityCheckScorer,
    "hf": HFClassifierScorer,
    "detoxify": DetoxifyScorer,
    "perspective": PerspectiveScorer,
}


def build_scorer(spec: str | Mapping[str, Any]) -> Scorer:
    """Build a toxicity scorer from configuration.

    Args:
        spec: A kind name (``"profanity_check"``, or ``"perspective"`` with its defaults),
            or a mapping with ``kind`` and the scorer's arguments, e.g.
            ``{"kind": "hf", "model": "path/to/classifier", "toxic_label": "toxic"}`` or
            ``{"kind": "detoxify", "checkpoint": "toxic_original-c1212f89.ckpt"}``.

    Raises:
        DarkmirrorError: Unknown kind (the message lists the kinds), unknown or missing
            arguments (it lists the accepted ones), or the scorer's own setup errors.
    """
    fields = {"kind": spec} if isinstance(spec, str) else dict(spec)
    kind = fields.pop("kind", None)
    if kind not in SCORER_KINDS:
        raise DarkmirrorError(
            f"scorer kind {kind!r} is unknown; expected one of {', '.join(SCORER_KINDS)}"
        )
    factory = SCORER_KINDS[kind]
    signature = inspect.signature(factory)
    try:
        signature.bind(**fields)
    except TypeError as exc:
        accepted = ", ".join(signature.parameters)
        raise DarkmirrorError(f"scorer kind {kind!r}: {exc}; it accepts {accepted}") from None
    return factory(**fields)
