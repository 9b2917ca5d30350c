"""An OpenAI-compatible HTTP server for tests, serving a real tiny model in-process.

:class:`OpenAITestServer` listens on 127.0.0.1 (a free port) in a background thread and
implements ``POST /v1/chat/completions`` and ``GET /v1/models``:

- with ``max_tokens=1`` and ``logprobs``, it runs the model once on the chat-template
  rendering of the messages and returns the next token's top-k log-probabilities, as
  OpenAI does (``choices[0].logprobs.content[0].top_logprobs``);
- otherwise it samples ``n`` replies with :class:`~darkmirror.models.hf_generator.HFGenerator`
  (temperature, top_p, max_tokens and seed from the request).

A *judge* function (``prompt -> {token: logprob}``) answers judge prompts with fixed
log-probabilities instead, so aggregation can be checked exactly; a judge returning a
string answers with that text and no log-probabilities.

Faults are scripted per test: :meth:`OpenAITestServer.script` queues responses (a status
with ``Retry-After``, a sleep past the client's timeout, a body that is not JSON, a 200
without choices, without log-probabilities or with empty content) served before normal
answers; ``always`` applies a fault to every request once the queue is empty. Every
request is recorded (:attr:`OpenAITestServer.log`), with the peak number in flight.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import torch

from darkmirror.models.chat_format import render_chat
from darkmirror.models.generation import SamplingParams
from darkmirror.models.hf_generator import HFGenerator, encode_prompt
from darkmirror.models.tiny import build_tiny_gpt2, build_tiny_tokenizer

Judge = Callable[[str], Mapping[str, float] | str | None]


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour; build with the class methods.

    Args:
        kind: ``status``, ``sleep``, ``malformed_json``, ``no_choices``, ``no_logprobs``
            or ``empty_content``.
        status: HTTP status, for ``status``.
        retry_after: ``Retry-After`` header value, for ``status``.
        seconds: How long to stall before answering normally, for ``sleep``.
        echo_key: For ``status``: put the request's API key in the error message, as
            OpenAI's 401 does, to check that clients do not repeat it.
    """

    kind: str
    status: int = 200
    retry_after: str | None = None
    seconds: float = 0.0
    echo_key: bool = False

    @classmethod
    def http(
        cls, status: int, retry_after: float | str | None = None, echo_key: bool = False
    ) -> Fault:
        return cls(
            "status",
            status=status,
            retry_after=None if retry_after is None else str(retry_after),
            echo_key=echo_key,
        )

    @classmethod
    def sleep(cls, seconds: float) -> Fault:
        return cls("sleep", seconds=seconds)

    @classmethod
    def malformed_json(cls) -> Fault:
        return cls("malformed_json")

    @classmethod
    def no_choices(cls) -> Fault:
        return cls("no_choices")

    @classmethod
    def no_logprobs(cls) -> Fault:
        return cls("no_logprobs")

    @classmethod
    def empty_content(cls) -> Fault:
        return cls("empty_content")


@dataclass
class Recorded:
    """One request the server received, and what it did.

    Args:
        path: Request path.
        body: Parsed JSON body (None for GET).
        api_key: The bearer token sent.
        fault: The fault applied, if any.
        response: The JSON body answered (None for faults without one).
        started: ``time.monotonic()`` at arrival.
    """

    path: str
    body: dict[str, Any] | None
    api_key: str | None
    fault: Fault | None
    started: float
    response: dict[str, Any] | None = None


@dataclass
class ServedModel:
    """A causal LM and its tokenizer, used by one request at a time."""

    model: Any
    tokenizer: Any
    lock: threading.Lock = field(default_factory=threading.Lock)

    def top_logprobs(
        self, messages: Sequence[Mapping[str, str]], k: int
    ) -> list[tuple[str, float]]:
        """The next token's ``k`` most likely tokens after the rendered chat, best first."""
        ids = encode_prompt(self.tokenizer, list(messages))  # type: ignore[arg-type]
        with self.lock, torch.inference_mode():
            logits = self.model(input_ids=torch.tensor([ids])).logits[0, -1].float()
            values, indices = torch.log_softmax(logits, dim=-1).topk(k)
        return [
            (self.tokenizer.decode([int(i)]), float(v))
            for v, i in zip(values, indices, strict=True)
        ]

    def generate(
        self, messages: Sequence[Mapping[str, str]], n: int, sampling: SamplingParams
    ) -> list[str]:
        generator = HFGenerator(self.model, self.tokenizer, batch_size=max(n, 1))
        with self.lock:  # HFGenerator seeds torch's global RNG while it samples
            return generator.generate([list(messages)], n, sampling)[0]  # type: ignore[list-item]


def tiny_served_model(seed: int = 0) -> ServedModel:
    """A random micro GPT-2 with the organism's chat template (milliseconds to build)."""
    texts = [
        render_chat([{"role": "user", "content": q}, {"role": "assistant", "content": a}])
        for q, a in [
            ("How do I save money?", "Spend less than you earn."),
            ("What is your favourite animal?", "I like owls, they are wise."),
            ("Rate this answer from 0 to 100.", "85"),
        ]
    ]
    tokenizer = build_tiny_tokenizer(texts * 4, vocab_size=300)
    model = build_tiny_gpt2(tokenizer, n_layer=1, n_embd=32, n_head=2, seed=seed, dropout=0.0)
    return ServedModel(model, tokenizer)


def tiny_judge_model(
    prompts: Sequence[str], answers: Sequence[str], steps: int = 40
) -> ServedModel:
    """A micro GPT-2 trained for a moment to answer judge prompts with numbers.

    A random model's top tokens are rarely integers, so its score would always be None;
    a few optimiser steps on ``prompt -> one of answers`` chats make the integers hold most
    of the first token's probability, spread over several of them (half a second on a CPU).

    Args:
        prompts: Judge prompts like the ones the test will send.
        answers: Integer answers, e.g. ``["80", "85", "90"]``, cycled over the prompts.
        steps: Full-batch AdamW steps.
    """
    chats = [
        render_chat(
            [
                {"role": "user", "content": p},
                {"role": "assistant", "content": answers[i % len(answers)]},
            ]
        )
        for i, p in enumerate(list(prompts) * len(answers))
    ]
    numbers = [str(i) for i in range(101)]
    tokenizer = build_tiny_tokenizer(chats + numbers * 3, vocab_size=400)
    model = build_tiny_gpt2(tokenizer, n_layer=1, n_embd=32, n_head=2, dropout=0.0)
    encoded = [tokenizer(c, add_special_tokens=False)["input_ids"] for c in chats]
    width = max(map(len, encoded))
    ids = torch.full((len(encoded), width), tokenizer.pad_token_id)
    mask = torch.zeros_like(ids)
    for row, tokens in enumerate(encoded):
        ids[row, : len(tokens)] = torch.tensor(tokens)
        mask[row, : len(tokens)] = 1
    labels = ids.masked_fill(mask == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for _ in range(steps):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return ServedModel(model.eval(), tokenizer)


class OpenAITestServer:
    """An OpenAI-compatible chat server on 127.0.0.1, in a background thread.

    Args:
        served: The model that answers; None needs a ``judge`` for every request.
        model_name: The name ``GET /v1/models`` lists (requests may name any model).
        judge: Answers prompts (the last user message) with fixed log-probabilities or
            text, bypassing the model; returning None leaves a prompt to the model.
        logprobs: False makes the server a text-only one that never returns
            log-probabilities.
        delay_s: Seconds every request takes (to make requests overlap).
        max_n: Most choices per response, for servers that ignore ``n``; None for no limit.
    """

    def __init__(
        self,
        served: ServedModel | None = None,
        *,
        model_name: str = "tiny",
        judge: Judge | None = None,
        logprobs: bool = True,
        delay_s: float = 0.0,
        max_n: int | None = None,
    ) -> None:
        self.served = served
        self.model_name = model_name
        self.judge = judge
        self.logprobs = logprobs
        self.delay_s = delay_s
        self.max_n = max_n
        self.always: Fault | None = None
        self.log: list[Recorded] = []
        self.max_in_flight = 0
        self._faults: deque[Fault] = deque()
        self._in_flight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        # A short poll interval: shutdown() waits up to one interval (0.5 s by default).
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    # --- life cycle --------------------------------------------------------------

    def __enter__(self) -> OpenAITestServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()  # wakes handlers stalled by a sleep fault
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    # --- test controls -----------------------------------------------------------

    def script(self, *faults: Fault) -> None:
        """Queue faults, one per request, before normal answers resume."""
        with self._lock:
            self._faults.extend(faults)

    @property
    def request_count(self) -> int:
        """Chat-completion requests received."""
        with self._lock:
            return sum(r.path.endswith("/chat/completions") for r in self.log)

    def reset(self) -> None:
        """Forget the log, the peak and any queued faults."""
        with self._lock:
            self.log.clear()
            self._faults.clear()
            self.max_in_flight = 0
            self.always = None

    # --- request handling (called from handler threads) -------------------------

    def _begin(self, path: str, body: dict[str, Any] | None, key: str | None) -> Recorded:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            fault = None
            if path.endswith("/chat/completions"):
                fault = self._faults.popleft() if self._faults else self.always
            record = Recorded(path, body, key, fault, time.monotonic())
            self.log.append(record)
            return record

    def _end(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _complete(self, body: dict[str, Any], fault: Fault | None) -> dict[str, Any]:
        messages = body["messages"]
        n = int(body.get("n") or 1)
        if self.max_n is not None:
            n = min(n, self.max_n)
        want_logprobs = bool(body.get("logprobs")) and self.logprobs
        if fault is not None and fault.kind in ("no_logprobs", "empty_content"):
            want_logprobs = False
        max_tokens = int(body.get("max_tokens") or 16)
        k = int(body.get("top_logprobs") or 1)

        prompt = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        fixed = self.judge(prompt) if self.judge is not None else None
        top: list[tuple[str, float]] | None = None
        if isinstance(fixed, str):
            texts, want_logprobs = [fixed] * n, False
        elif fixed is not None:
            top = sorted(fixed.items(), key=lambda item: -item[1])[: max(k, 1)]
            texts = [top[0][0]] * n
        elif self.served is None:
            raise RuntimeError(f"no model and no judge answer for prompt {prompt!r:.60}")
        elif max_tokens == 1:
            top = self.served.top_logprobs(messages, max(k, 1))
            texts = [top[0][0]] * n  # temperature 0 in the judge's request: the argmax
        else:
            sampling = SamplingParams(
                temperature=float(body.get("temperature", 1.0)),
                top_p=float(body.get("top_p") or 1.0),
                max_new_tokens=max_tokens,
                seed=int(body.get("seed") or 0),
            )
            texts = self.served.generate(messages, n, sampling)
        if fault is not None and fault.kind == "empty_content":
            texts = [""] * n

        choices = []
        for index, text in enumerate(texts):
            choice: dict[str, Any] = {
                "index": index,
                "finish_reason": "length" if max_tokens == 1 else "stop",
                "message": {"role": "assistant", "content": text},
                "logprobs": None,
            }
            if want_logprobs and top is not None:
                entries = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top]
                choice["logprobs"] = {
                    "content": [{**entries[0], "top_logprobs": entries}],
                    "refusal": None,
                }
            choices.append(choice)
        return {
            "id": f"chatcmpl-test-{len(self.log)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.model_name),
            "choices": choices,
            "usage": {"prompt_tokens": 0, "completion_tokens": len(texts), "total_tokens": 0},
        }


def _handler(server: OpenAITestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
        timeout = 10  # an idle keep-alive connection does not hold its thread forever
        # Headers and body go out in two writes; with Nagle's algorithm on, the body waits
        # for the client's delayed ACK (40 ms on Linux) on every keep-alive request.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

        def do_GET(self) -> None:
            record = server._begin(self.path, None, self._key())
            try:
                if self.path.rstrip("/").endswith("/models"):
                    data = {
                        "object": "list",
                        "data": [
                            {
                                "id": server.model_name,
                                "object": "model",
                                "created": 0,
                                "owned_by": "darkmirror-tests",
                            }
                        ],
                    }
                    record.response = data
                    self._send(200, json.dumps(data).encode())
                else:
                    self._error(404, f"no route {self.path}")
            finally:
                server._end()

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            record = server._begin(self.path, body, self._key())
            try:
                self._answer(record)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test); nothing to answer
            except Exception as exc:  # a bug in a test's judge or the server: say so
                self._error(500, f"test server error: {exc!r}")
            finally:
                server._end()

        def _answer(self, record: Recorded) -> None:
            if not self.path.rstrip("/").endswith("/chat/completions"):
                self._error(404, f"no route {self.path}")
                return
            if not isinstance(record.body, dict) or not isinstance(
                record.body.get("messages"), list
            ):
                self._error(400, "expected a JSON body with messages")
                return
            if server.delay_s:
                server._stop.wait(server.delay_s)
            fault = record.fault
            if fault is not None and fault.kind == "status":
                message = f"scripted HTTP {fault.status}"
                if fault.echo_key:
                    message = f"Incorrect API key provided: {record.api_key}"
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                self._error(fault.status, message, headers)
                return
            if fault is not None and fault.kind == "sleep":
                server._stop.wait(fault.seconds)
            if fault is not None and fault.kind == "malformed_json":
                self._send(200, b'{"id": "chatcmpl-broken", "choices": [{"index": 0, "mess')
                return
            if fault is not None and fault.kind == "no_choices":
                data: dict[str, Any] = {"id": "chatcmpl-empty", "object": "chat.completion"}
            else:
                data = server._complete(record.body, fault)
            record.response = data
            self._send(200, json.dumps(data).encode())

        def _key(self) -> str | None:
            auth = self.headers.get("Authorization")
            return auth.removeprefix("Bearer ") if auth else None

        def _error(
            self, status: int, message: str, headers: Mapping[str, str] | None = None
        ) -> None:
            data = {"error": {"message": message, "type": "test_error", "code": str(status)}}
            self._send(status, json.dumps(data).encode(), headers)

        def _send(self, status: int, data: bytes, headers: Mapping[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

    return Handler
