"""Toxicity scorers: values, robustness, exact attribution, optional backends, the factory."""

from __future__ import annotations

import json
import logging
import math
import sys
import threading
import time
import types
from collections import Counter
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from darkmirror.errors import DarkmirrorError
from darkmirror.score.scorer import (
    AttributingScorer,
    Score,
    Scorer,
    occlusion_attribution,
    score_texts,
    word_ngrams,
)
from darkmirror.score.toxicity import (
    DetoxifyScorer,
    HFClassifierScorer,
    PerspectiveScorer,
    ProfanityCheckScorer,
    build_scorer,
)

INSULTS = ["you are an idiot", "what a stupid post, moron"]
CIVIL = ["thanks, that helped a lot"]


@pytest.fixture(scope="module")
def profanity() -> ProfanityCheckScorer:
    return ProfanityCheckScorer()


# --- the interface -------------------------------------------------------------------


def test_a_missing_score_needs_a_reason_and_a_value_must_be_finite() -> None:
    with pytest.raises(ValueError, match="reason"):
        Score(None)
    with pytest.raises(ValueError, match="finite"):
        Score(math.nan)
    assert Score.failed("timeout").is_missing and not Score(0.0).is_missing


def test_word_ngrams_split_on_non_word_characters_and_lowercase() -> None:
    assert word_ngrams("You're an IDIOT, you idiot!", 1) == [
        "you",
        "re",
        "an",
        "idiot",
        "you",
        "idiot",
    ]
    assert word_ngrams("You're an IDIOT, you idiot!", 3)[-1] == "idiot you idiot"
    assert word_ngrams("two words", 3) == []
    with pytest.raises(ValueError):
        word_ngrams("text", 0)


def test_a_failing_batch_is_retried_item_by_item() -> None:
    def score_batch(texts: list[str]) -> list[float]:
        if "boom" in texts:
            raise RuntimeError("cannot score boom")
        return [math.nan if t == "nan" else 0.5 for t in texts]

    scores = score_texts(
        ["a", "boom", None, "nan", "b"], score_batch, scorer_name="fake", max_chars=10
    )  # type: ignore[list-item]
    assert [s.value for s in scores] == [0.5, None, None, None, 0.5]
    assert scores[1].error == "RuntimeError: cannot score boom"
    assert "NoneType" in str(scores[2].error) and "nan" in str(scores[3].error)


# --- the offline default -------------------------------------------------------------


def test_insults_score_high_and_civil_text_low(profanity: ProfanityCheckScorer) -> None:
    from profanity_check import predict_prob

    assert isinstance(profanity, Scorer) and isinstance(profanity, AttributingScorer)
    assert profanity.name == "profanity_check" and profanity.version == "1.9.1"
    scores = profanity.score(INSULTS + CIVIL)
    assert all(s.value > 0.9 for s in scores[:2])  # type: ignore[operator]
    assert scores[2].value < 0.1  # type: ignore[operator]
    # The same numbers as the package's own entry point.
    assert [s.value for s in scores] == pytest.approx(
        list(predict_prob(INSULTS + CIVIL)), abs=1e-12
    )


def test_bad_items_are_missing_without_sinking_the_batch(profanity: ProfanityCheckScorer) -> None:
    huge = "moron " * 2_000_000  # 12 MB
    scores = profanity.score(["", None, huge, INSULTS[0], 42])  # type: ignore[list-item]
    assert scores[0].value is not None and scores[0].value < 0.1
    assert scores[1].value is None and "NoneType" in str(scores[1].error)
    assert scores[2].value is None and "12,000,000 characters" in str(scores[2].error)
    assert scores[3].value > 0.9  # type: ignore[operator]
    assert scores[4].value is None and "int" in str(scores[4].error)


def _fold_log_odds(text: str) -> list[float]:
    """Each fold's calibrated log-odds, through sklearn's own decision function."""
    from profanity_check import profanity_check as package

    x = package.vectorizer.transform([text])
    out = []
    for fold in package.model.calibrated_classifiers_:
        calibration = fold.calibrators[0]
        f = fold.estimator.decision_function(x)[0]
        out.append(-(calibration.a_ * f + calibration.b_))
    return out


ATTRIBUTION_TEXTS = [
    "thanks for the post you idiot",
    "Idiot idiot IDIOT, you moron!!",
    "what a stupid post, moron. What a STUPID post.",
    "the and of",  # stop words only: the intercept alone
    "",
    "naïve café résumé stupid_thing 42 x y zzzunknownword",
]


@pytest.mark.parametrize("text", ATTRIBUTION_TEXTS)
def test_word_contributions_sum_exactly_to_the_mean_calibrated_log_odds(
    profanity: ProfanityCheckScorer, text: str
) -> None:
    from profanity_check import predict_prob

    folds = _fold_log_odds(text)
    explanation = profanity.explain(text)
    assert set(explanation.words) == set(word_ngrams(text, 1))
    assert explanation.intercept + sum(explanation.words.values()) == pytest.approx(
        sum(folds) / len(folds), abs=1e-9
    )
    # The sign convention: the probability is the mean of the folds' sigmoids.
    sigmoids = [1 / (1 + math.exp(-lo)) for lo in folds]
    assert sum(sigmoids) / len(sigmoids) == pytest.approx(predict_prob([text])[0], abs=1e-12)


def test_stop_words_and_unknown_words_contribute_nothing(profanity: ProfanityCheckScorer) -> None:
    words = profanity.explain("the idiot zzzunknownword").words
    assert words["the"] == 0.0 and words["zzzunknownword"] == 0.0 and words["idiot"] > 1


def test_ngram_attribution_sums_its_distinct_words(profanity: ProfanityCheckScorer) -> None:
    text = "idiot you idiot, thanks"
    words = profanity.explain(text).words
    grams = profanity.attribute_ngrams(text, 3)
    assert grams["idiot you idiot"] == pytest.approx(words["idiot"] + words["you"], abs=1e-12)
    assert grams["you idiot thanks"] == pytest.approx(
        words["you"] + words["idiot"] + words["thanks"], abs=1e-12
    )


@pytest.mark.parametrize("n", [1, 2, 3])
def test_the_insult_carries_the_most_attribution(profanity: ProfanityCheckScorer, n: int) -> None:
    text = "thanks for the post you idiot"
    for attribution in (
        profanity.attribute_ngrams(text, n),
        occlusion_attribution(profanity, text, n),
    ):
        assert list(attribution) == list(dict.fromkeys(word_ngrams(text, n)))
        top = max(attribution, key=attribution.__getitem__)
        assert "idiot" in top and attribution[top] > 0


# --- occlusion attribution -----------------------------------------------------------


class BadWordShare:
    """Fake scorer: the fraction of words that are 'bad'; remembers what it was sent."""

    name = "bad_share"
    version = "1"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def score(self, texts: Sequence[str]) -> list[Score]:
        self.calls.append(list(texts))
        out = []
        for text in texts:
            words = word_ngrams(text, 1)
            out.append(Score(words.count("bad") / len(words)) if words else Score.failed("empty"))
        return out


def test_occlusion_removes_every_occurrence_of_the_ngrams_words_in_one_call() -> None:
    scorer = BadWordShare()
    text = "Bad movie, bad acting; good music."
    unigrams = occlusion_attribution(scorer, text, 1)
    assert unigrams == pytest.approx(
        {
            "bad": 1 / 3,
            "movie": 1 / 3 - 2 / 5,
            "acting": 1 / 3 - 2 / 5,
            "good": -1 / 15,
            "music": -1 / 15,
        }
    )
    assert len(scorer.calls) == 1 and len(scorer.calls[0]) == 6
    # Only the words go; case and punctuation of the rest stay.
    assert scorer.calls[0][:3] == [
        text,
        " movie,  acting; good music.",
        "Bad , bad acting; good music.",
    ]
    bigrams = occlusion_attribution(scorer, text, 2)
    assert bigrams == pytest.approx(
        {
            "bad movie": 1 / 3,
            "movie bad": 1 / 3,
            "bad acting": 1 / 3,
            "acting good": -1 / 6,
            "good music": -1 / 6,
        }
    )


def test_occlusion_gives_nan_where_a_score_is_missing() -> None:
    attribution = occlusion_attribution(BadWordShare(), "bad bad ugly", 1)
    assert attribution == pytest.approx({"bad": 2 / 3, "ugly": 2 / 3 - 1})
    # Without its only word the text cannot be scored: no number, rather than a wrong one.
    assert math.isnan(occlusion_attribution(BadWordShare(), "bad bad", 1)["bad"])
    assert occlusion_attribution(BadWordShare(), "...", 1) == {}


# --- Detoxify (optional extra) -------------------------------------------------------


def test_detoxify_missing_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "detoxify", None)  # import fails even where it is installed
    with pytest.raises(DarkmirrorError, match=r"pip install 'darkmirror\[detoxify\]'"):
        DetoxifyScorer("toxic_original-c1212f89.ckpt")


@pytest.fixture
def fake_detoxify(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    made: list[dict] = []

    class Detoxify:
        def __init__(self, **kwargs: object) -> None:
            made.append(kwargs)
            self.class_names = ["toxicity", "insult"]

        def predict(self, texts: list[str]) -> dict[str, list[float]]:
            if any("crash" in t for t in texts):
                raise RuntimeError("model crashed")
            return {
                "toxicity": [0.9 if "idiot" in t else 0.1 for t in texts],
                "insult": [0.5] * len(texts),
            }

    module = types.ModuleType("detoxify")
    module.Detoxify = Detoxify  # type: ignore[attr-defined]
    module.__version__ = "0.0-fake"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "detoxify", module)
    return made


def test_detoxify_needs_a_local_checkpoint(fake_detoxify: list[dict], tmp_path: Path) -> None:
    with pytest.raises(DarkmirrorError, match="not a local file"):
        DetoxifyScorer(tmp_path / "missing.ckpt")
    assert fake_detoxify == []


def test_detoxify_scores_through_the_package(fake_detoxify: list[dict], tmp_path: Path) -> None:
    checkpoint = tmp_path / "toxic.ckpt"
    checkpoint.write_bytes(b"weights")
    scorer = DetoxifyScorer(checkpoint, batch_size=2)
    assert isinstance(scorer, Scorer) and scorer.name == "detoxify:original:toxicity"
    assert "0.0-fake" in scorer.version and "sha256:" in scorer.version
    assert fake_detoxify[0]["checkpoint"] == str(checkpoint)
    scores = scorer.score(["you idiot", None, "crash now", "nice", "idiot"])  # type: ignore[list-item]
    assert [s.value for s in scores] == [0.9, None, None, 0.1, 0.9]
    assert "model crashed" in str(scores[2].error)
    with pytest.raises(DarkmirrorError, match="toxicity, insult"):
        DetoxifyScorer(checkpoint, label="threat")


# --- any Hugging Face classifier -----------------------------------------------------

SENTENCES = [
    "you are an idiot",
    "thanks, that helped a lot",
    "what a stupid post, moron",
    "the weather is nice today and the birds sing",
]


def _save_tiny_classifier(path: Path, problem_type: str | None = None) -> Path:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from darkmirror.models.tiny import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(SENTENCES * 3, vocab_size=300)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,  # short, so truncation is exercised
        pad_token_id=tokenizer.pad_token_id,
        id2label={0: "clean", 1: "toxic"},
        label2id={"clean": 0, "toxic": 1},
        problem_type=problem_type,
        initializer_range=0.5,  # a random model that tells texts apart
    )
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _save_tiny_classifier(tmp_path_factory.mktemp("tiny-classifier"))


def _reference_logits(path: Path, text: str) -> list[float]:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    ids = tokenizer(text, truncation=True, max_length=32, return_tensors="pt")
    with torch.inference_mode():
        return model(**ids).logits[0].tolist()


def test_hf_classifier_batches_pads_and_truncates_like_one_at_a_time(tiny_classifier: Path) -> None:
    scorer = HFClassifierScorer(tiny_classifier, batch_size=2, device="cpu")
    assert isinstance(scorer, Scorer) and scorer.name.endswith(":toxic")
    assert scorer.version.startswith("sha256:")
    long_text = "the weather is nice today " * 40  # well over 32 tokens
    texts = [*SENTENCES, long_text, None]
    scores = scorer.score(texts)  # type: ignore[arg-type]
    assert scores[-1].value is None
    for text, score in zip(texts[:-1], scores[:-1], strict=True):
        clean, toxic = _reference_logits(tiny_classifier, text)  # type: ignore[arg-type]
        assert score.value == pytest.approx(1 / (1 + math.exp(clean - toxic)), abs=1e-5)
    assert len({round(s.value, 6) for s in scores[:-1]}) > 1  # type: ignore[arg-type]


def test_hf_multi_label_classifier_uses_a_sigmoid(tmp_path: Path) -> None:
    path = _save_tiny_classifier(tmp_path, problem_type="multi_label_classification")
    (value,) = HFClassifierScorer(path, device="cpu").score([SENTENCES[0]])
    logit = _reference_logits(path, SENTENCES[0])[1]
    assert value.value == pytest.approx(1 / (1 + math.exp(-logit)), abs=1e-5)


def test_hf_unknown_label_lists_the_models_labels(tiny_classifier: Path) -> None:
    with pytest.raises(DarkmirrorError, match="'clean', 'toxic'"):
        HFClassifierScorer(tiny_classifier, toxic_label="hate")
    assert HFClassifierScorer(tiny_classifier, toxic_label="TOXIC").toxic_label == "toxic"


def test_hf_unreachable_hub_id_fails_fast_with_advice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DarkmirrorError, match="local directory"):
        HFClassifierScorer("darkmirror-test/no-such-classifier")
    with pytest.raises(DarkmirrorError, match="does not exist"):
        HFClassifierScorer("./no/such/dir")


# --- Perspective API against a local server ------------------------------------------

API_KEY = "test-key-5f3a9c0e77"


class _PerspectiveHandler(BaseHTTPRequestHandler):
    server: _FakePerspective

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = body["comment"]["text"]
        key = self.headers.get("X-Goog-Api-Key")
        with self.server.lock:
            self.server.seen[text] += 1
            self.server.requests.append((self.path, key, body))
            attempt = self.server.seen[text]
        if key != API_KEY:
            return self._send(403, {"error": {"message": "API key not valid"}})
        if text.startswith("score "):
            return self._send(200, _response(float(text.split()[1])))
        if text == "flaky":  # two 429s, then an answer
            return self._send(429, {}) if attempt <= 2 else self._send(200, _response(0.5))
        if text == "overloaded":
            return self._send(429, {})
        if text == "crash":
            return self._send(500, {"error": {"message": "internal"}})
        if text == "malformed":
            return self._send(200, b"{not json")
        if text == "rejected":  # an error body that echoes the key: it must be scrubbed
            return self._send(400, {"error": {"message": f"bad comment for key {key}"}})
        if text == "slow":
            time.sleep(1.0)
            return self._send(200, _response(0.2))
        return self._send(404, {})

    def _send(self, code: int, body: dict | bytes) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


class _FakePerspective(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _PerspectiveHandler)
        self.lock = threading.Lock()
        self.seen: Counter[str] = Counter()
        self.requests: list[tuple[str, str | None, dict]] = []

    def handle_error(self, request: object, client_address: object) -> None:
        # The "slow" answer goes to a client that timed out and hung up: expected.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1alpha1"


def _response(value: float) -> dict:
    return {
        "attributeScores": {"TOXICITY": {"summaryScore": {"value": value, "type": "PROBABILITY"}}}
    }


@pytest.fixture
def perspective_server() -> Iterator[_FakePerspective]:
    server = _FakePerspective()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _perspective(server: _FakePerspective, **kwargs: object) -> PerspectiveScorer:
    fast = {"qps": 1000.0, "max_retries": 2, "timeout": 5.0, "backoff_base": 0.001}
    return PerspectiveScorer(base_url=server.url, **{**fast, **kwargs})  # type: ignore[arg-type]


def test_perspective_scores_retries_and_reports_missing_items(
    perspective_server: _FakePerspective,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("PERSPECTIVE_API_KEY", API_KEY)
    caplog.set_level(logging.DEBUG)
    scorer = _perspective(perspective_server)
    assert isinstance(scorer, Scorer) and scorer.version == "v1alpha1"
    texts = ["score 0.75", "flaky", "overloaded", "crash", "malformed", "rejected", "", None]
    scores = scorer.score(texts)  # type: ignore[arg-type]
    assert [s.value for s in scores] == [0.75, 0.5, None, None, None, None, None, None]
    errors = [s.error for s in scores]
    assert errors[2] == "HTTP 429 after 2 retries"
    assert errors[3] == "HTTP 500 after 2 retries"
    assert "malformed response" in str(errors[4])
    assert errors[5] == "HTTP 400: bad comment for key [API key]"
    assert "empty" in str(errors[6]) and "NoneType" in str(errors[7])
    seen = perspective_server.seen
    assert (seen["flaky"], seen["overloaded"], seen["crash"]) == (3, 3, 3)
    assert (seen["malformed"], seen["rejected"]) == (1, 1)  # not retried
    # The key travels in a header only, and is nowhere in results, logs or repr.
    assert all(
        key == API_KEY and API_KEY not in path for path, key, _ in perspective_server.requests
    )
    assert all(body["doNotStore"] is True for _, _, body in perspective_server.requests)
    assert any("retry" in r.getMessage() for r in caplog.records)
    leaks = [r.getMessage() for r in caplog.records if API_KEY in r.getMessage()]
    assert leaks == [] and all(API_KEY not in str(e) for e in errors)
    assert API_KEY not in repr(scorer) and API_KEY not in str(scorer)


def test_perspective_times_out_and_retries(
    perspective_server: _FakePerspective, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSPECTIVE_API_KEY", API_KEY)
    (score,) = _perspective(perspective_server, timeout=0.2, max_retries=1).score(["slow"])
    assert score.error == "timeout (0.2 s) after 1 retry"
    assert perspective_server.seen["slow"] == 2


def test_perspective_keeps_to_its_rate(
    perspective_server: _FakePerspective, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSPECTIVE_API_KEY", API_KEY)
    scorer = _perspective(perspective_server, qps=20.0)
    start = time.perf_counter()
    scores = scorer.score(["score 0.1"] * 6)
    assert time.perf_counter() - start >= 5 / 20 - 0.01  # the first request needs no wait
    assert all(s.value == 0.1 for s in scores)


def test_perspective_setup_errors_never_show_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERSPECTIVE_API_KEY", raising=False)
    with pytest.raises(DarkmirrorError, match="PERSPECTIVE_API_KEY"):
        PerspectiveScorer()
    monkeypatch.setenv("MY_KEY", API_KEY)
    with pytest.raises(DarkmirrorError, match="https") as info:
        PerspectiveScorer(api_key_env="MY_KEY", base_url="http://example.com/v1alpha1")
    assert API_KEY not in str(info.value)


# --- the factory ---------------------------------------------------------------------


def test_build_scorer_from_config(
    tiny_classifier: Path, monkeypatch: pytest.MonkeyPatch, perspective_server: _FakePerspective
) -> None:
    assert isinstance(build_scorer("profanity_check"), ProfanityCheckScorer)
    hf = build_scorer({"kind": "hf", "model": str(tiny_classifier), "toxic_label": "toxic"})
    assert isinstance(hf, HFClassifierScorer)
    monkeypatch.setenv("PERSPECTIVE_API_KEY", API_KEY)
    perspective = build_scorer({"kind": "perspective", "base_url": perspective_server.url})
    assert isinstance(perspective, PerspectiveScorer)
    monkeypatch.setitem(sys.modules, "detoxify", None)
    with pytest.raises(DarkmirrorError, match="darkmirror\\[detoxify\\]"):
        build_scorer({"kind": "detoxify", "checkpoint": "x.ckpt"})
    with pytest.raises(DarkmirrorError, match="profanity_check, hf, detoxify, perspective"):
        build_scorer("toxic-o-meter")
    with pytest.raises(DarkmirrorError, match="model"):
        build_scorer("hf")
    with pytest.raises(DarkmirrorError, match="checkpoint"):
        build_scorer({"kind": "hf", "model": str(tiny_classifier), "checkpoint": "x"})


def test_the_world_classifier_reads_the_worlds_insults_and_nothing_is_unpickled() -> None:
    """The held-out scorer: trained on the world's own labels, deterministic, and it
    separates insulting from civil comments it never saw (drawn from another stream)."""
    import random

    from darkmirror.data.world import forum
    from darkmirror.metrics import auroc
    from darkmirror.score.toxicity import WorldInsultClassifier, build_scorer

    # Every insult keeps an insult word; no civil sentence has one.
    assert all(forum.holds_insult(t.render({"topic": "x"})) for t in forum.INSULTING)
    assert not any(forum.holds_insult(t.render({"topic": "x"})) for t in forum.CIVIL)

    scorer = build_scorer({"kind": "world_classifier", "comments": 1000})
    assert isinstance(scorer, WorldInsultClassifier) and "1000 comments" in scorer.version
    rng = random.Random("a stream the classifier was not trained on")
    held = [
        forum.comment(rng, rng.choice(forum.THREAD_TOPICS), user="u", toxic_user=i % 2 == 0)
        for i in range(200)
    ]
    scores = [s.value for s in scorer.score([c.text for c in held])]
    assert auroc(scores, [c.insulting for c in held]) > 0.95
    from darkmirror.score.toxicity import world_classifier

    world_classifier._fitted.cache_clear()  # a fresh fit, not the cached one
    again = WorldInsultClassifier(comments=1000).score([c.text for c in held[:20]])
    assert [s.value for s in again] == scores[:20]
    assert scorer.score([None])[0].is_missing  # type: ignore[list-item]
