"""A toxicity scorer that asks Google's Perspective API (optional; never a default)."""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import os
import random
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any

from darkmirror.errors import DarkmirrorError
from darkmirror.score.scorer import Score, text_problem

logger = logging.getLogger(__name__)


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
