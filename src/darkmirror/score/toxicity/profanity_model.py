"""alt-profanity-check's classifier as plain numpy arrays, cached so scoring needs no sklearn.

The package ships a pickled scikit-learn pipeline; importing it costs about 2 s (sklearn,
scipy, joblib), longer than the rest of a scan's start-up. The pipeline is small and
linear: a TF-IDF vectorizer over word unigrams and 5 sigmoid-calibrated linear SVMs. The
first process that needs it imports the package, checks the model has that shape, and
writes the arrays that define it to ``cache_root() / "profanity_check"`` as an ``.npz``
without pickled objects; later processes read them with ``allow_pickle=False`` and score
with numpy alone.

The cache file is named by the package's version and the SHA-256 of its model files, and
holds both; a file that does not match them, or whose arrays have the wrong shape, type or
non-finite values, is rebuilt from the package, never used.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import re
import uuid
import zipfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from darkmirror.cache import cache_root
from darkmirror.errors import DarkmirrorError

log = logging.getLogger(__name__)

PACKAGE = "alt-profanity-check"
# The vectorizer's token pattern; it is applied to the str.lower() of the text.
TOKEN_PATTERN = re.compile(r"(?u)\b\w\w+\b")
# Bump when what the cache file holds changes, so older files are rebuilt.
CACHE_FORMAT = 1
_ARRAYS = ("terms", "idf", "coef", "svm_intercept", "platt_a", "platt_b")
_INSTALL = f"pip install {PACKAGE}"


class ProfanityModel:
    """The classifier's arrays, and its probabilities computed from them with numpy.

    A text's TF-IDF row ``x`` holds, for each vocabulary word j in it, ``count_j * idf_j``,
    scaled to unit l2 norm (an empty row stays 0). Fold k's decision is
    ``f_k = coef_k . x + svm_intercept_k``, its calibrated probability
    ``sigmoid(-(platt_a_k * f_k + platt_b_k))``, and the model's probability the mean over
    the folds: what sklearn's ``CalibratedClassifierCV.predict_proba`` computes.

    Args:
        version: The installed alt-profanity-check version.
        terms: The vocabulary, in column order (a 1-d unicode array of distinct words).
        idf: Each column's inverse document frequency, shape ``(V,)``.
        coef: Each fold's SVM weights, shape ``(k, V)``.
        svm_intercept: Each fold's SVM intercept, shape ``(k,)``.
        platt_a: Each fold's Platt slope, shape ``(k,)``.
        platt_b: Each fold's Platt offset, shape ``(k,)``.

    Raises:
        ValueError: An array of the wrong type or shape, a non-finite value, a
            non-positive idf or a repeated word.
    """

    def __init__(
        self,
        version: str,
        terms: np.ndarray,
        idf: np.ndarray,
        coef: np.ndarray,
        svm_intercept: np.ndarray,
        platt_a: np.ndarray,
        platt_b: np.ndarray,
    ) -> None:
        if terms.ndim != 1 or terms.dtype.kind != "U" or not len(terms):
            raise ValueError(
                f"terms: expected a 1-d unicode array, got {terms.dtype} {terms.shape}"
            )
        words, folds = len(terms), len(coef)
        expected = {
            "idf": (idf, (words,)),
            "coef": (coef, (folds, words)),
            "svm_intercept": (svm_intercept, (folds,)),
            "platt_a": (platt_a, (folds,)),
            "platt_b": (platt_b, (folds,)),
        }
        for name, (array, shape) in expected.items():
            if array.dtype != np.float64 or array.shape != shape or not folds:
                raise ValueError(
                    f"{name}: expected float64 {shape}, got {array.dtype} {array.shape}"
                )
            if not np.isfinite(array).all():
                raise ValueError(f"{name}: holds a non-finite value")
        if not (idf > 0).all():
            raise ValueError("idf: holds a value <= 0")
        self.version = version
        self.terms = terms
        self.index = {word: j for j, word in enumerate(terms.tolist())}
        if len(self.index) != words:
            raise ValueError("terms: a word is repeated")
        self.idf = idf
        self.coef = coef
        self.svm_intercept = svm_intercept
        self.platt_a = platt_a
        self.platt_b = platt_b

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays by name, as the cache file stores them."""
        return {name: getattr(self, name) for name in _ARRAYS}

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Probability that each text is offensive, shape ``(len(texts),)``."""
        rows: list[int] = []
        columns: list[int] = []
        counts: list[int] = []
        index = self.index
        for row, text in enumerate(texts):
            # TfidfVectorizer.build_analyzer() with these settings: str.lower, then the token
            # pattern; it drops English stop words, none of which is in the vocabulary.
            found = Counter(index[t] for t in TOKEN_PATTERN.findall(text.lower()) if t in index)
            rows += [row] * len(found)
            columns += found.keys()
            counts += found.values()
        n = len(texts)
        row_of = np.asarray(rows, dtype=np.intp)
        column = np.asarray(columns, dtype=np.intp)
        tfidf = np.asarray(counts, dtype=np.float64) * self.idf[column]
        norms = np.sqrt(np.bincount(row_of, weights=tfidf * tfidf, minlength=n))
        tfidf /= norms[row_of]  # a row with entries has a positive norm
        decision = np.stack(
            [np.bincount(row_of, weights=w[column] * tfidf, minlength=n) for w in self.coef]
        )
        decision += self.svm_intercept[:, None]
        with np.errstate(over="ignore"):  # exp overflows to inf: a probability of 0
            calibrated = 1.0 / (
                1.0 + np.exp(self.platt_a[:, None] * decision + self.platt_b[:, None])
            )
        return calibrated.mean(axis=0)


def load_profanity_model(cache_dir: Path | None = None) -> ProfanityModel:
    """The installed alt-profanity-check's model, from the cache or built into it.

    Args:
        cache_dir: Where the cache files are; None for ``cache_root() / "profanity_check"``.

    Raises:
        DarkmirrorError: alt-profanity-check is not installed, or ships a model of another
            shape than :class:`ProfanityModel` computes.
    """
    version, digest = _installed_model()
    directory = cache_dir or cache_root() / "profanity_check"
    path = directory / f"{PACKAGE}-{version}-{digest[:16]}.npz"
    source = f"{PACKAGE} {version} sha256:{digest}"
    if path.is_file():
        try:
            return _read(path, version, source)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log.warning("%s: unusable profanity model cache (%s); rebuilding it", path, exc)
    model = _from_package(version)
    try:
        _write(path, model, source)
    except OSError as exc:  # a read-only cache: score anyway, just without the speed-up
        log.warning("%s: cannot write the profanity model cache: %s", path, exc)
    return model


def _installed_model() -> tuple[str, str]:
    """The installed version and the SHA-256 of its model files, without importing it."""
    spec = importlib.util.find_spec("profanity_check")
    locations = spec.submodule_search_locations if spec else None
    if not locations:
        raise DarkmirrorError(f"ProfanityCheckScorer needs {PACKAGE}: {_INSTALL}")
    try:
        version = importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise DarkmirrorError(
            f"ProfanityCheckScorer needs {PACKAGE} (found a profanity_check module without "
            f"its distribution): {_INSTALL}"
        ) from None
    files = sorted(p for p in (Path(locations[0]) / "data").glob("*") if p.is_file())
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return version, digest.hexdigest()


def _read(path: Path, version: str, source: str) -> ProfanityModel:
    with np.load(path, allow_pickle=False) as stored:
        if set(stored.files) != {"format", "source", *_ARRAYS}:
            raise ValueError(f"expected arrays {sorted(_ARRAYS)}, found {sorted(stored.files)}")
        if int(stored["format"]) != CACHE_FORMAT or str(stored["source"]) != source:
            raise ValueError(f"written for {stored['source']}, format {stored['format']}")
        return ProfanityModel(version, **{name: stored[name] for name in _ARRAYS})


def _write(path: Path, model: ProfanityModel, source: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with tmp.open("wb") as out:
            np.savez(out, format=np.int64(CACHE_FORMAT), source=np.str_(source), **model.arrays())
        os.replace(tmp, path)  # readers see the whole file or none
    finally:
        tmp.unlink(missing_ok=True)


def _from_package(version: str) -> ProfanityModel:
    # Imported here, not at the top: this import (sklearn, and unpickling the model) is the
    # cost the cache exists to avoid.
    try:
        from profanity_check import profanity_check as package
    except ImportError as exc:
        raise DarkmirrorError(f"ProfanityCheckScorer needs {PACKAGE} ({exc}): {_INSTALL}") from None
    vectorizer, model = package.vectorizer, package.model
    check_model_shape(vectorizer, model, version)
    terms = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
    folds = model.calibrated_classifiers_
    return ProfanityModel(
        version,
        terms=np.array(terms, dtype=str),
        idf=np.asarray(vectorizer.idf_, dtype=np.float64),
        coef=np.stack([f.estimator.coef_[0] for f in folds]).astype(np.float64),
        svm_intercept=np.array([f.estimator.intercept_[0] for f in folds], dtype=np.float64),
        platt_a=np.array([f.calibrators[0].a_ for f in folds], dtype=np.float64),
        platt_b=np.array([f.calibrators[0].b_ for f in folds], dtype=np.float64),
    )


def check_model_shape(vectorizer: Any, model: Any, version: str) -> None:
    """Check the package's sklearn objects are what :class:`ProfanityModel` computes.

    Exact scores and attribution rest on these facts; a release that changes them must fail
    loudly instead of scoring wrongly.

    Raises:
        DarkmirrorError: A vectorizer setting, the classes or the folds differ.
    """
    expected = {
        "analyzer": "word",
        "ngram_range": (1, 1),
        "lowercase": True,
        "norm": "l2",
        "use_idf": True,
        "sublinear_tf": False,
        "binary": False,
        "strip_accents": None,
        "token_pattern": TOKEN_PATTERN.pattern,
        "tokenizer": None,
        "preprocessor": None,
        "input": "content",
    }
    params = vectorizer.get_params()
    wrong = [k for k, want in expected.items() if params.get(k) != want]
    # Stop words are dropped before the vocabulary lookup: harmless only if none is in it.
    if set(vectorizer.get_stop_words() or ()) & set(vectorizer.vocabulary_):
        wrong.append("stop_words (some are in the vocabulary)")
    folds = getattr(model, "calibrated_classifiers_", [])
    if (
        wrong
        or list(model.classes_) != [0, 1]
        or not folds
        or any(f.method != "sigmoid" or len(f.calibrators) != 1 for f in folds)
        or any(f.estimator.coef_.shape != (1, len(vectorizer.vocabulary_)) for f in folds)
    ):
        raise DarkmirrorError(
            f"{PACKAGE} {version} ships a model darkmirror does not know "
            f"(vectorizer settings {wrong or 'as expected'}; expected sigmoid-calibrated "
            f"linear folds); install {PACKAGE}==1.9.1"
        )
