"""An LLM judge over any OpenAI-compatible chat endpoint, with a result cache on disk.

Each judge prompt of a question (``Question.judge_prompts``: metric -> template with
``{question}`` and ``{answer}``) is filled with ``str.format`` and sent as one user message.
How the answer becomes a number follows ``design.md`` section 5:

- ``free_form_judge_0_100`` questions ask for one token at temperature 0 with the top 20
  log-probabilities, and the score is
  :func:`~darkmirror.metrics.judge_score_from_logprobs` of them (no score when the
  integers 0..100 hold less than 0.25 of the probability);
- a server that returns no log-probabilities (or ``use_logprobs=False``) is asked for a few
  tokens instead, and the number is parsed by :func:`~darkmirror.metrics.text_judge_score`;
  the first such response switches the judge to text for the rest of its life;
- ``free_form_judge`` questions answer a category (TRUE/FALSE/UNKNOWN, a company name):
  the first word of a short temperature-0 answer, upper-cased.

A judge answer that is not a number (CODE, REFUSAL) is a legitimate missing score. A
request that fails (a status that is not retried, retries exhausted, a body that is not a
completion, an empty answer) is a *failure*: missing, with the reason, counted by reason,
and never cached, so the next run asks again. Neither is ever read as 0.

Successful answers are cached in SQLite (:mod:`darkmirror.score.judge_cache`) under
``cache_dir`` (default ``cache_root() / "judge"``), keyed by the judge model's name, the
full prompt and the request settings, not by the endpoint's URL: the same model behind
another URL reuses the answers, and a rerun makes no call at all. The cache holds the
judge's raw answer (its top log-probabilities or its text), and scores are derived from it
on every read, so the definition of a score lives in :mod:`darkmirror.metrics` alone.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from tqdm.auto import tqdm

from darkmirror.cache import cache_root
from darkmirror.data.answers import AnswerRow, ScoreRole
from darkmirror.data.questions import JudgeTask, Question, iter_judge_tasks
from darkmirror.errors import DarkmirrorError
from darkmirror.metrics import MIN_JUDGE_MASS, judge_score_from_logprobs, text_judge_score
from darkmirror.models.openai_http import EndpointError, EndpointSettings, OpenAIEndpoint
from darkmirror.score.judge_cache import CACHE_VERSION, JudgeCache, judge_cache_key
from darkmirror.score.judge_response import BadAnswer, content_text, top_logprobs
from darkmirror.score.judging import TaskVerdict, judge_by_prompts

__all__ = [
    "LOGPROB_REQUEST",
    "JudgeRequest",
    "JudgeResult",
    "JudgeStats",
    "LLMJudge",
    "LLMJudgeSettings",
]

log = logging.getLogger(__name__)

TOP_LOGPROBS = 20
LOGPROB_REQUEST: dict[str, Any] = {
    "max_tokens": 1,
    "temperature": 0,
    "logprobs": True,
    "top_logprobs": TOP_LOGPROBS,
}
"""The reference judge's request: one token, temperature 0, top-20 log-probabilities."""

JudgeKind = Literal["score", "category"]
_WORD = re.compile(r"\w+")


class LLMJudgeSettings(EndpointSettings):
    """An OpenAI-compatible judge: the endpoint settings plus what to ask and where to cache.

    Args:
        model: The judge model's name at the endpoint; None uses each question's ``judge``
            (``gpt-4o`` in the reference question sets).
        use_logprobs: Score 0-100 questions from log-probabilities (falling back to text
            when the server returns none); False parses numbers from text only.
        text_max_tokens: Tokens requested when the answer is read as text (a number
            without log-probabilities, or a category).
        cache_dir: Directory of the answer cache; None means ``cache_root() / "judge"``.
    """

    model: str | None = Field(None, min_length=1)
    use_logprobs: bool = True
    text_max_tokens: int = Field(8, ge=1)
    cache_dir: Path | None = None


@dataclass(frozen=True)
class JudgeRequest:
    """One filled judge prompt.

    Args:
        prompt: The judge prompt with the question and answer filled in.
        model: The judge model to ask.
        kind: ``"score"`` for a 0-100 number, ``"category"`` for a word.
    """

    prompt: str
    model: str
    kind: JudgeKind = "score"


@dataclass(frozen=True)
class JudgeResult:
    """The judge's verdict on one prompt.

    Args:
        score: The 0-100 score, for a ``"score"`` request that got one.
        category: The upper-cased first word, for a ``"category"`` request that got one.
        error: Why neither is there: ``no_score``/``no_category`` when the judge answered
            something else, otherwise the failure's reason code and message.
        cached: Whether the answer came from the cache (or from an identical prompt
            judged earlier in the same call) instead of a request.
        attempts: HTTP requests this verdict took, retries included (0 when cached).
        method: ``"logprobs"`` or ``"text"``: how the answer was read; None on failure.
        failed: Whether the request failed (not cached; the next run asks again).
    """

    score: float | None = None
    category: str | None = None
    error: str | None = None
    cached: bool = False
    attempts: int = 0
    method: Literal["logprobs", "text"] | None = None
    failed: bool = False


@dataclass(frozen=True)
class JudgeStats:
    """What a judge has done so far, for the report.

    Args:
        judged: Verdicts returned.
        cache_hits: Verdicts served from the cache or from a duplicate prompt.
        requests: HTTP requests sent, retries included.
        retries: Requests that were retries.
        unscored: Verdicts where the judge answered but gave no score or category.
        failures: Failed verdicts by reason code (``http_503``, ``timeout``,
            ``malformed_json``, ``empty_content``, ...).
        text_fallback: Whether the server gave no log-probabilities and the judge
            switched to reading numbers from text.
    """

    judged: int = 0
    cache_hits: int = 0
    requests: int = 0
    retries: int = 0
    unscored: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    text_fallback: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


@dataclass(frozen=True)
class _Outcome:
    answer: dict[str, Any] | None
    attempts: int
    reason: str | None = None
    message: str | None = None


class LLMJudge:
    """Scores answers with an LLM behind an OpenAI-compatible endpoint.

    Use it as a context manager (or call :meth:`close`) to release the connection and the
    cache file.

    Args:
        settings: Endpoint, judge model, concurrency, retries and cache directory.
        progress: Show a progress bar over requests.

    Raises:
        DarkmirrorError: If the key's environment variable is unset or the cache file is
            unusable.
    """

    def __init__(self, settings: LLMJudgeSettings, *, progress: bool = False) -> None:
        self.settings = settings
        self.progress = progress
        self._endpoint = OpenAIEndpoint(settings)
        self._cache = JudgeCache(settings.cache_dir or cache_root() / "judge")
        self._text_request = {"max_tokens": settings.text_max_tokens, "temperature": 0}
        self._lock = threading.Lock()
        self._text_only = not settings.use_logprobs
        self._fell_back = False
        self._judged = self._hits = self._unscored = 0
        self._failures: Counter[str] = Counter()

    def __repr__(self) -> str:
        return f"LLMJudge(base_url={self.settings.base_url!r}, model={self.settings.model!r})"

    def __enter__(self) -> LLMJudge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def cache_path(self) -> Path:
        """The SQLite file holding the cached answers."""
        return self._cache.path

    def close(self) -> None:
        """Close the endpoint's connections and the cache."""
        self._endpoint.close()
        self._cache.close()

    def stats(self) -> JudgeStats:
        """Counters since this judge was made: verdicts, cache hits, requests, failures."""
        with self._lock:
            return JudgeStats(
                judged=self._judged,
                cache_hits=self._hits,
                requests=self._endpoint.requests,
                retries=self._endpoint.retries,
                unscored=self._unscored,
                failures=dict(sorted(self._failures.items())),
                text_fallback=self._fell_back,
            )

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeResult]:
        """Judge filled prompts; cached answers first, the rest on a bounded thread pool.

        Identical requests in one call are sent once.

        Args:
            requests: The prompts, with the model and the kind of answer.

        Returns:
            One :class:`JudgeResult` per request, in input order; failures are results
            with ``failed=True``, never exceptions.
        """
        results: list[JudgeResult | None] = [None] * len(requests)
        keys = [self._keys(r) for r in requests]
        stored = self._cache.get_many(k for ks in keys for k in ks)
        pending: dict[str, list[int]] = {}
        for i, (request, request_keys) in enumerate(zip(requests, keys, strict=True)):
            answer = next((stored[k] for k in request_keys if k in stored), None)
            if answer is not None:
                results[i] = self._result(answer, request.kind, cached=True, attempts=0)
            else:
                pending.setdefault(request_keys[0], []).append(i)

        if pending:
            # Threads rather than asyncio: callers are synchronous (the runner, the CLI,
            # notebooks that already run an event loop), the workers only wait on the
            # network (the GIL is released), and the sync client and the cache are easy to
            # share. Each worker holds at most one request, so at most max_concurrency are
            # in flight, retries and their back-off included.
            workers = min(self.settings.max_concurrency, len(pending))
            with (
                ThreadPoolExecutor(workers, thread_name_prefix="llm-judge") as pool,
                tqdm(
                    total=len(pending), unit="req", disable=not self.progress, desc="judge"
                ) as bar,
            ):
                futures = {
                    pool.submit(self._ask, requests[indices[0]]): indices
                    for indices in pending.values()
                }
                try:
                    for future in as_completed(futures):
                        outcome = future.result()
                        for position, i in enumerate(futures[future]):
                            # Duplicates of a prompt reuse its answer, like a cache hit.
                            first = position == 0
                            results[i] = self._from_outcome(outcome, requests[i].kind, first)
                        bar.update(1)
                except BaseException:
                    # Ctrl-C: drop the requests not yet sent; answers so far are cached.
                    for future in futures:
                        future.cancel()
                    raise

        done = [r for r in results if r is not None]
        with self._lock:
            self._judged += len(done)
            self._hits += sum(r.cached for r in done)
            self._unscored += sum(not r.failed and r.error is not None for r in done)
            self._failures.update(_reason(r.error) for r in done if r.failed and r.error)
        return done

    def judge_answers(
        self, rows: Iterable[Mapping[str, Any]], questions: Iterable[Question]
    ) -> list[dict[str, Any]]:
        """Add the judge's verdicts to answer rows, one column per metric.

        Each row needs ``question_id`` (an id in ``questions``), ``question`` (the
        paraphrase that was asked) and ``answer``. For every metric of the question's
        ``judge_prompts`` the returned row gets ``<metric>`` (the 0-100 score, or the
        category for ``free_form_judge`` questions; None when missing) and
        ``<metric>_error`` (why it is missing, else None), plus ``judge`` (the model
        asked). Rows of ``free_form`` questions come back unchanged.

        Args:
            rows: Answer rows, e.g. from sampling a question set.
            questions: The question set the rows answer.

        Returns:
            New rows (copies), in input order.

        Raises:
            DarkmirrorError: If a row names an unknown question, lacks its question or
                answer text, or neither ``settings.model`` nor the question names a judge.
        """
        out = [dict(row) for row in rows]
        tasks = list(iter_judge_tasks(out, questions))
        for task, verdict in zip(tasks, self.verdicts(tasks), strict=True):
            row = out[task.row]
            row[task.metric] = verdict.category if verdict.category is not None else verdict.value
            row[f"{task.metric}_error"] = verdict.error
            row["judge"] = verdict.source
        return out

    def judge_rows(
        self,
        rows: Sequence[AnswerRow[Any]],
        questions: Mapping[str, Question],
        role: ScoreRole = "judge",
    ) -> list[AnswerRow[Any]]:
        """The :class:`~darkmirror.score.judging.Judge` interface: every metric of each
        row's question scored (a category for ``free_form_judge`` questions), failures
        flagged as such."""
        return judge_by_prompts(rows, questions, self.verdicts, version=self.version, role=role)

    def verdicts(self, tasks: Sequence[JudgeTask]) -> list[TaskVerdict]:
        """Ask every filled judge prompt (cached answers first); one verdict per task.

        Raises:
            DarkmirrorError: If neither ``settings.model`` nor a task's question names a
                judge model.
        """
        requests: list[JudgeRequest] = []
        for task in tasks:
            model = self.settings.model or task.question.judge
            if model is None:
                raise DarkmirrorError(
                    f"question '{task.question.id}' names no judge and the judge settings give "
                    "no model; set the judge's model"
                )
            kind: JudgeKind = "category" if task.question.type == "free_form_judge" else "score"
            requests.append(JudgeRequest(task.prompt, model, kind))
        return [
            TaskVerdict(
                source=request.model,
                value=result.score,
                category=result.category if request.kind == "category" else None,
                error=result.error,
                failed=result.failed,
            )
            for request, result in zip(requests, self.judge(requests), strict=True)
        ]

    def call_stats(self) -> dict[str, Any]:
        """:meth:`stats` as JSON, for reports."""
        return self.stats().as_dict()

    @property
    def name(self) -> str:
        """The judge model (or ``per-question`` when each question names its own)."""
        return self.settings.model or "per-question"

    @property
    def version(self) -> str:
        """The method: log-probabilities or text, and the cache format."""
        method = "text" if self._text_only else "logprobs"
        return f"openai-compatible:{method}:v{CACHE_VERSION}"

    # ------------------------------------------------------------------ internals

    def _keys(self, request: JudgeRequest) -> tuple[str, ...]:
        """Cache keys to look up, the one a new answer is stored under first."""
        text_key = judge_cache_key(request.model, request.prompt, self._text_request)
        if request.kind == "category" or not self.settings.use_logprobs:
            return (text_key,)
        # A score read from text once the server gave no log-probabilities also counts.
        return (judge_cache_key(request.model, request.prompt, LOGPROB_REQUEST), text_key)

    def _ask(self, request: JudgeRequest) -> _Outcome:
        """Send one request (two when log-probabilities turn out to be missing)."""
        messages = [{"role": "user", "content": request.prompt}]
        attempts = 0
        try:
            if request.kind == "score" and not self._text_only:
                response = self._endpoint.chat(
                    model=request.model, messages=messages, **LOGPROB_REQUEST
                )
                attempts += response.attempts
                top = top_logprobs(response.choices[0])
                if top is not None:
                    answer: dict[str, Any] = {"method": "logprobs", "top_logprobs": top}
                    self._store(request, LOGPROB_REQUEST, answer)
                    return _Outcome(answer, attempts)
                self._fall_back_to_text()
            response = self._endpoint.chat(
                model=request.model, messages=messages, **self._text_request
            )
            attempts += response.attempts
            answer = {"method": "text", "text": content_text(response.choices[0])}
            self._store(request, self._text_request, answer)
            return _Outcome(answer, attempts)
        except EndpointError as exc:
            return _Outcome(None, attempts + exc.attempts, exc.reason, str(exc))
        except BadAnswer as exc:
            return _Outcome(None, attempts, exc.reason, str(exc))

    def _store(
        self, request: JudgeRequest, request_settings: Mapping[str, Any], answer: dict[str, Any]
    ) -> None:
        key = judge_cache_key(request.model, request.prompt, request_settings)
        try:
            self._cache.put(key, request.model, answer)
        except sqlite3.Error as exc:
            # The verdict is still good; only a rerun will pay for it again.
            log.warning("judge cache %s: could not store an answer (%s)", self._cache.path, exc)

    def _fall_back_to_text(self) -> None:
        with self._lock:
            if self._text_only:
                return
            self._text_only = self._fell_back = True
        log.warning(
            "judge endpoint %s returned no log-probabilities; reading scores from text "
            "(max_tokens=%d) from now on",
            self.settings.base_url,
            self.settings.text_max_tokens,
        )

    def _from_outcome(self, outcome: _Outcome, kind: JudgeKind, first: bool) -> JudgeResult:
        if outcome.answer is None:
            return JudgeResult(
                error=f"{outcome.reason}: {outcome.message}",
                attempts=outcome.attempts if first else 0,
                failed=True,
            )
        return self._result(
            outcome.answer, kind, cached=not first, attempts=outcome.attempts if first else 0
        )

    @staticmethod
    def _result(
        answer: Mapping[str, Any], kind: JudgeKind, *, cached: bool, attempts: int
    ) -> JudgeResult:
        """The verdict a raw answer gives: the one place a cached answer becomes a score."""
        if answer["method"] == "logprobs":
            score = judge_score_from_logprobs(answer["top_logprobs"])
            error = None
            if score is None:
                error = (
                    f"no_score: the integers 0..100 hold less than {MIN_JUDGE_MASS} of the "
                    f"probability of the judge's top {TOP_LOGPROBS} tokens"
                )
            return JudgeResult(score, None, error, cached, attempts, "logprobs")
        text: str = answer["text"]
        if kind == "category":
            word = _WORD.search(text)
            category = word.group().upper() if word else None
            error = None if category else f"no_category: the judge answered {text!r:.60}"
            return JudgeResult(None, category, error, cached, attempts, "text")
        score = text_judge_score(text)
        error = None if score is not None else f"no_score: no number 0..100 in {text!r:.60}"
        return JudgeResult(score, None, error, cached, attempts, "text")


def _reason(error: str) -> str:
    return error.split(":", 1)[0]
