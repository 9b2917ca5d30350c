"""alt-profanity-check scored from cached numpy arrays: same numbers as sklearn, no sklearn."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from darkmirror.score.toxicity import ProfanityCheckScorer
from darkmirror.score.toxicity.profanity_model import ProfanityModel, load_profanity_model

pytest.importorskip("profanity_check", reason="alt-profanity-check is not installed")

PIECES = [
    "",
    " ",
    "\n\t",
    "!!!",
    "...?!",
    "a",
    "I",
    "x_y",
    "42",
    "3.14",
    "__init__",
    "don't",
    "e-mail",
    "İSTANBUL",  # lower() gives 'i̇stanbul': a combining dot inside the word
    "STRASSE straße",
    "ΣΊΣΥΦΟΣ",
    "naïve café",
    "na\u0308ive",  # a combining diaeresis splits the \w run
    "日本語のテキスト",
    "مرحبا بالعالم",
    "😡🤬 💩",
    "zzzunknownword qqqxyz",
    "the and of to",  # stop words only
    "IDIOT",
    "Stupid",
    "fuck",
    "sh1t",
    "moron!!",
    "\u00a0idiot\u2009",
]


def varied_texts(vocabulary: list[str], n: int = 400, seed: int = 0) -> list[str]:
    """Texts of every kind the tokeniser must agree on, built from a fixed seed."""
    rng = random.Random(seed)
    texts = list(PIECES)
    while len(texts) < n:
        words = [
            rng.choice(vocabulary) if rng.random() < 0.6 else rng.choice(PIECES)
            for _ in range(rng.choice([1, 2, 5, 20, 80]))
        ]
        words = [w.upper() if rng.random() < 0.1 else w for w in words]
        if rng.random() < 0.2:
            words = words * rng.randint(2, 6)  # repeated words: counts above 1
        sep = rng.choice([" ", "", ", ", "_", "\n", "-", " ... "])
        texts.append(sep.join(words))
    texts.append(" ".join(rng.choice(vocabulary) for _ in range(20_000)))  # long text
    return texts


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DARKMIRROR_CACHE", str(tmp_path))
    return tmp_path / "profanity_check"


def test_probabilities_equal_sklearn_on_varied_texts(cache: Path) -> None:
    from profanity_check import profanity_check as package

    model = load_profanity_model()
    texts = varied_texts(sorted(package.vectorizer.vocabulary_))
    expected = package.model.predict_proba(package.vectorizer.transform(texts))[:, 1]
    got = model.probabilities(texts)
    assert got.shape == expected.shape == (len(texts),)
    assert np.abs(got - expected).max() < 1e-9
    # The texts span the range, so the comparison is not only of near-constant numbers.
    assert (expected > 0.9).sum() > 20 and (expected < 0.1).sum() > 20
    # A second process reads the same numbers back from the cache file.
    assert np.abs(load_profanity_model().probabilities(texts) - expected).max() < 1e-9


def test_warm_cache_scores_without_importing_sklearn(cache: Path) -> None:
    texts = ["you stupid idiot", "thanks for the post", ""]
    scorer = ProfanityCheckScorer()
    here = [s.value for s in scorer.score(texts)]
    words = scorer.explain(texts[0]).words
    script = (
        "import json, sys\n"
        "from darkmirror.score.toxicity import ProfanityCheckScorer\n"
        "s = ProfanityCheckScorer()\n"
        f"scores = [x.value for x in s.score({texts!r})]\n"
        f"words = s.explain({texts[0]!r}).words\n"
        "heavy = [m for m in ('sklearn', 'scipy', 'joblib', 'profanity_check') if m in sys.modules]\n"
        "print(json.dumps({'scores': scores, 'words': words, 'heavy': heavy, 'v': s.version}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "DARKMIRROR_CACHE": str(cache.parent)},
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    out = json.loads(done.stdout)
    assert out["heavy"] == []
    assert out["scores"] == here and out["words"] == words and out["v"] == scorer.version
    assert here[0] > 0.9 > 0.1 > here[1]


def _cache_file(cache: Path) -> Path:
    (path,) = cache.glob("*.npz")
    return path


def test_cache_file_is_named_by_version_and_model_hash(cache: Path) -> None:
    import hashlib
    import importlib.metadata
    import importlib.util

    load_profanity_model()
    spec = importlib.util.find_spec("profanity_check")
    data = Path(spec.submodule_search_locations[0]) / "data"  # type: ignore[union-attr,index]
    digest = hashlib.sha256()
    for path in sorted(data.glob("*")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    version = importlib.metadata.version("alt-profanity-check")
    name = _cache_file(cache).name
    assert name == f"alt-profanity-check-{version}-{digest.hexdigest()[:16]}.npz"
    with np.load(_cache_file(cache), allow_pickle=False) as stored:
        assert str(stored["source"]).endswith(digest.hexdigest())


def _rewrite(path: Path, **changes: object) -> None:
    with np.load(path, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays.update(changes)  # type: ignore[arg-type]
    with path.open("wb") as out:
        np.savez(out, **arrays)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "damage",
    [
        "truncated",
        "garbage",
        "short idf",
        "nan weight",
        "other model",
        "repeated word",
        "missing array",
    ],
)
def test_a_damaged_cache_is_rebuilt_not_trusted(cache: Path, damage: str) -> None:
    texts = ["you stupid idiot", "what a lovely day", "moron moron"]
    good = load_profanity_model().probabilities(texts)
    path = _cache_file(cache)
    stored = dict(np.load(path, allow_pickle=False))
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:5000])
    elif damage == "garbage":
        path.write_bytes(b"not an npz at all")
    elif damage == "short idf":
        _rewrite(path, idf=stored["idf"][:-1])
    elif damage == "nan weight":
        coef = stored["coef"].copy()
        coef[0, 0] = np.nan
        _rewrite(path, coef=coef)
    elif damage == "other model":
        _rewrite(path, source=np.str_("alt-profanity-check 1.9.1 sha256:" + "0" * 64))
    elif damage == "repeated word":
        terms = stored["terms"].copy()
        terms[1] = terms[0]
        _rewrite(path, terms=terms)
    elif damage == "missing array":
        del stored["platt_b"]
        with path.open("wb") as out:
            np.savez(out, **stored)
    rebuilt = load_profanity_model()
    assert np.array_equal(rebuilt.probabilities(texts), good)
    # The damaged file was replaced by a good one.
    assert np.array_equal(load_profanity_model().probabilities(texts), good)
    with np.load(path, allow_pickle=False) as fixed:
        assert np.array_equal(fixed["idf"], stored["idf"])


def test_the_model_refuses_arrays_of_the_wrong_shape() -> None:
    terms = np.array(["idiot", "moron"])
    ones = np.ones(2)
    with pytest.raises(ValueError, match="coef"):
        ProfanityModel("1", terms, ones, np.ones((3, 1)), np.ones(3), np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="idf"):
        ProfanityModel("1", terms, -ones, np.ones((1, 2)), np.ones(1), np.ones(1), np.ones(1))
    with pytest.raises(ValueError, match="terms"):
        ProfanityModel("1", ones, ones, np.ones((1, 2)), np.ones(1), np.ones(1), np.ones(1))
