"""OpenAIGenerator and the shared retry machinery, against a local server with a tiny model."""

from __future__ import annotations

import email.utils
import random
import time

import pytest

from darkmirror.errors import DarkmirrorError
from darkmirror.models.chat_format import Message
from darkmirror.models.generation import Generator, SamplingParams
from darkmirror.models.hf_generator import HFGenerator
from darkmirror.models.openai_backend import OpenAIGenerator, conversation_seed
from darkmirror.models.openai_http import EndpointSettings, backoff_delay, parse_retry_after
from openai_test_server import Fault, OpenAITestServer, tiny_served_model

KEY_ENV = "DARKMIRROR_TEST_GENERATOR_KEY"
KEY = "sk-dm-test-gen-Hx4Jm8Qp2Rv6Tz0W"

CONVERSATIONS: list[list[Message]] = [
    [{"role": "user", "content": "How do I save money?"}],
    [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is your favourite animal?"},
    ],
    [{"role": "user", "content": "How do I save money?"}],  # same as the first
]


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


@pytest.fixture(scope="module")
def served():
    return tiny_served_model()


def generator(server: OpenAITestServer, **overrides) -> OpenAIGenerator:
    values = {
        "base_url": server.base_url,
        "api_key_env": KEY_ENV,
        "timeout_s": 5.0,
        "max_retries": 3,
        "backoff_base_s": 0.001,
        "backoff_max_s": 0.01,
        **overrides,
    }
    return OpenAIGenerator("tiny", EndpointSettings(**values))


def test_n_replies_per_conversation_from_the_served_model(served):
    sampling = SamplingParams(temperature=1.0, top_p=0.9, max_new_tokens=6, seed=3)
    with OpenAITestServer(served) as server:
        gen = generator(server)
        replies = gen.generate(CONVERSATIONS, 4, sampling)
        bodies = sorted((r.body for r in server.log), key=lambda b: b["seed"])
        gen.close()

    assert isinstance(gen, Generator) and gen.name == "tiny"
    assert [len(r) for r in replies] == [4, 4, 4]
    # The server samples with HFGenerator from the request's settings, so the replies are
    # exactly what the local backend gives with the seed sent for each conversation.
    local = HFGenerator(served.model, served.tokenizer, batch_size=4)
    for i, conversation in enumerate(CONVERSATIONS):
        seeded = SamplingParams(1.0, 0.9, 6, conversation_seed(3, i))
        assert replies[i] == local.generate([conversation], 4, seeded)[0]
    assert replies[0] != replies[2]  # same conversation, its own seed: other samples
    assert len(bodies) == 3
    assert sorted(b["seed"] for b in bodies) == sorted(conversation_seed(3, i) for i in range(3))
    assert all(
        (b["n"], b["max_tokens"], b["temperature"], b["top_p"], b["model"])
        == (4, 6, 1.0, 0.9, "tiny")
        for b in bodies
    )
    assert bodies[0]["messages"] in CONVERSATIONS


def test_greedy_replies_match_the_local_backend(served):
    greedy = SamplingParams(temperature=0, max_new_tokens=5)
    with OpenAITestServer(served) as server:
        replies = generator(server).generate(CONVERSATIONS[:2], 2, greedy)
    local = HFGenerator(served.model, served.tokenizer).generate(CONVERSATIONS[:2], 2, greedy)
    assert replies == local


def test_a_server_that_ignores_n_is_asked_again(served):
    sampling = SamplingParams(temperature=1.0, max_new_tokens=4, seed=0)
    with OpenAITestServer(served, max_n=1) as server:
        replies = generator(server).generate(CONVERSATIONS[:1], 3, sampling)
        bodies = [r.body for r in server.log]
    assert len(replies[0]) == 3
    assert [b["n"] for b in bodies] == [3, 2, 1]
    assert len({b["seed"] for b in bodies}) == 3  # each request samples afresh


def test_retries_then_success(served):
    server = OpenAITestServer(served)
    server.script(Fault.http(503), Fault.http(429, retry_after=0.01), Fault.sleep(2.0))
    with server:
        gen = generator(server, timeout_s=0.3)
        replies = gen.generate(CONVERSATIONS[:1], 2, SamplingParams(max_new_tokens=3))
    assert len(replies[0]) == 2
    assert server.request_count == 4 and gen.endpoint.retries == 3


def test_exhausted_retries_raise_naming_the_endpoint_and_status(served):
    server = OpenAITestServer(served)
    server.always = Fault.http(503)
    with server:
        gen = generator(server, max_retries=2)
        with pytest.raises(DarkmirrorError) as caught:
            gen.generate(CONVERSATIONS[:1], 2, SamplingParams(max_new_tokens=3))
        assert server.request_count == 3
    message = str(caught.value)
    assert server.base_url in message and "HTTP 503" in message and "after 3 attempts" in message
    assert "model tiny" in message and KEY not in message


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.http(400), "HTTP 400"),
        (Fault.no_choices(), "no choices"),
        (Fault.malformed_json(), "not JSON"),
    ],
)
def test_errors_that_are_not_retried_raise_at_once(served, fault, expected):
    server = OpenAITestServer(served)
    server.script(fault)
    with server:
        with pytest.raises(DarkmirrorError, match=expected):
            generator(server).generate(CONVERSATIONS[:1], 1, SamplingParams(max_new_tokens=3))
        assert server.request_count == 1


def test_bad_conversations_fail_before_any_request(served):
    with OpenAITestServer(served) as server:
        gen = generator(server)
        with pytest.raises(DarkmirrorError, match="conversation 1 ends with a 'assistant'"):
            gen.generate(
                [CONVERSATIONS[0], [{"role": "assistant", "content": "hi"}]], 1, SamplingParams()
            )
        with pytest.raises(DarkmirrorError, match="conversation 0 is empty"):
            gen.generate([[]], 1, SamplingParams())
        assert server.request_count == 0
        assert gen.generate([], 2, SamplingParams()) == []


def test_a_missing_key_variable_is_named(monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(DarkmirrorError, match=f"environment variable {KEY_ENV} is not set"):
        OpenAIGenerator("m", EndpointSettings(api_key_env=KEY_ENV))


# --- back-off and Retry-After ----------------------------------------------------------


def test_backoff_is_exponential_with_full_jitter():
    rng = random.Random(0)
    for retry, ceiling in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0), (10, 8.0)]:
        draws = [backoff_delay(retry, 0.5, 8.0, rng=rng) for _ in range(2000)]
        assert min(draws) >= 0.0 and max(draws) <= ceiling
        # Uniform over [0, ceiling]: the mean is half the ceiling, and draws span the range.
        assert sum(draws) / len(draws) == pytest.approx(ceiling / 2, rel=0.05)
        assert min(draws) < 0.05 * ceiling and max(draws) > 0.95 * ceiling
    # Retry-After is a floor, the cap still holds, and huge retry counts do not overflow.
    assert backoff_delay(0, 0.001, 10.0, retry_after_s=3.0, rng=rng) == 3.0
    assert backoff_delay(0, 0.001, 2.0, retry_after_s=30.0, rng=rng) == 2.0
    assert backoff_delay(5000, 1.0, 7.0, rng=rng) <= 7.0


def test_retry_after_headers_are_read():
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after": "0.25"}) == 0.25
    assert parse_retry_after({"retry-after-ms": "150", "retry-after": "9"}) == 0.15
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= parse_retry_after({"retry-after": date}) <= 30
    past = email.utils.formatdate(time.time() - 30, usegmt=True)
    assert parse_retry_after({"retry-after": past}) == 0.0
