"""One OpenAI-compatible endpoint: the client, retries with back-off, and request counters.

The LLM judge (:mod:`darkmirror.score.llm_judge`) and the generation backend
(:mod:`darkmirror.models.openai_backend`) both talk to chat-completion endpoints through
:class:`OpenAIEndpoint`, so they retry the same way. The ``openai`` client is built with
``max_retries=0`` and the retries happen here, where they can be counted:

- 429, 5xx, timeouts and connection errors are retried, with exponential back-off and full
  jitter (a uniform draw in ``[0, min(backoff_max_s, backoff_base_s * 2**retry)]``), so
  that many workers refused at once do not come back at once;
- a ``Retry-After`` (or ``retry-after-ms``) header is honoured: the wait is at least what
  the server asked for, up to ``backoff_max_s``;
- any other 4xx is not retried (the request itself is wrong), nor is a body that is not a
  completion (not JSON, or no ``choices``).

The API key is read from an environment variable whose *name* is configured; it lives only
inside the ``openai`` client and is cut out of every message this module writes.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import os
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from darkmirror.errors import DarkmirrorError

log = logging.getLogger(__name__)

NO_KEY = "EMPTY"
"""Sent as the key when ``api_key_env`` is None: the client needs one, local servers ignore it."""

_EXCERPT = 200  # characters of a server's error message kept in ours


class EndpointSettings(BaseModel):
    """Where an OpenAI-compatible endpoint is and how hard to try it.

    Args:
        base_url: The API root, e.g. ``https://api.openai.com/v1`` or a vLLM server's
            ``http://localhost:8000/v1``.
        api_key_env: Name of the environment variable that holds the API key (the key
            itself is never a setting, so it never lands in a spec or a run directory);
            None for a server that needs no key.
        max_concurrency: Most requests in flight at once.
        timeout_s: Seconds one request may take before it is abandoned (and retried).
        max_retries: Retries after the first attempt, for 429, 5xx, timeouts and
            connection errors.
        backoff_base_s: Back-off scale: retry ``k`` (from 0) waits a uniform draw in
            ``[0, backoff_base_s * 2**k]``.
        backoff_max_s: Longest single wait, a server's ``Retry-After`` included.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field("https://api.openai.com/v1", min_length=1)
    api_key_env: str | None = Field("OPENAI_API_KEY", min_length=1)
    max_concurrency: int = Field(8, ge=1)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(5, ge=0)
    backoff_base_s: float = Field(1.0, ge=0)
    backoff_max_s: float = Field(60.0, ge=0)


class EndpointError(DarkmirrorError):
    """A request the endpoint did not answer with a completion, after any retries.

    Args:
        message: What happened, naming the endpoint (never the key).
        reason: Short code for counting: ``http_<status>``, ``timeout``, ``connection``,
            ``malformed_json`` or ``no_choices``.
        status: HTTP status, when the server answered.
        attempts: Requests sent for this call, retries included.
    """

    def __init__(self, message: str, *, reason: str, status: int | None, attempts: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status
        self.attempts = attempts


@dataclass(frozen=True)
class ChatResponse:
    """A chat-completion body that has at least one choice.

    Args:
        choices: The body's ``choices``, each a dict as the server sent it.
        attempts: Requests sent to get it, retries included.
    """

    choices: list[dict[str, Any]]
    attempts: int


def backoff_delay(
    retry: int,
    base_s: float,
    max_s: float,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``retry`` (0 for the first retry).

    Full jitter: a uniform draw in ``[0, min(max_s, base_s * 2**retry)]``. A server's
    ``Retry-After`` is a floor, so the wait is at least that, and never more than ``max_s``.

    Args:
        retry: How many retries came before this one.
        base_s: Scale of the exponential back-off.
        max_s: Cap on the wait.
        retry_after_s: What the server asked for, if anything.
        rng: Source of the jitter (tests pass a seeded one).
    """
    # min() before the power would overflow for a large retry count.
    ceiling = min(max_s, base_s * 2.0 ** min(retry, 60))
    delay = (rng or random).uniform(0.0, ceiling)
    if retry_after_s is not None and retry_after_s > 0:
        delay = max(delay, retry_after_s)
    return min(delay, max_s)


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds a response asks the client to wait, from ``retry-after-ms`` or ``retry-after``.

    Args:
        headers: Response headers (case-insensitive mapping, as httpx gives them).

    Returns:
        The delay in seconds (seconds, or an HTTP date turned into seconds from now), or
        None when neither header is present and readable.
    """
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            value = float(milliseconds) / 1000
            if math.isfinite(value):
                return max(value, 0.0)
        except ValueError:
            pass
    header = headers.get("retry-after")
    if header is None:
        return None
    try:
        value = float(header)
        return max(value, 0.0) if math.isfinite(value) else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def resolve_api_key(api_key_env: str | None, base_url: str) -> str:
    """The API key from the environment variable named ``api_key_env``.

    Args:
        api_key_env: Name of the variable; None for a server that needs no key.
        base_url: The endpoint, named in the error.

    Raises:
        DarkmirrorError: If the variable is unset or empty.
    """
    if api_key_env is None:
        return NO_KEY
    key = os.environ.get(api_key_env, "")
    if not key:
        raise DarkmirrorError(
            f"environment variable {api_key_env} is not set; it should hold the API key for "
            f"{base_url} (set api_key_env to another variable's name, or to null for a server "
            "that needs no key)"
        )
    return key


class OpenAIEndpoint:
    """An OpenAI-compatible chat endpoint with counted retries; safe to share across threads.

    Args:
        settings: Where the endpoint is and how to retry.
        sleep: Waits between retries (tests may pass a recorder).
        rng: Source of the back-off jitter.

    Raises:
        DarkmirrorError: If the key's environment variable is unset.
    """

    def __init__(
        self,
        settings: EndpointSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        import openai  # a core dependency, but slow to import: only when an endpoint is used

        self.settings = settings
        key = resolve_api_key(settings.api_key_env, settings.base_url)
        self._client = openai.OpenAI(
            base_url=settings.base_url,
            api_key=key,
            max_retries=0,
            timeout=settings.timeout_s,
        )
        # Kept only to cut the key out of server messages that echo it (401 bodies do).
        self._secret = key if key != NO_KEY else None
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._requests = 0
        self._retries = 0

    def __repr__(self) -> str:
        return f"OpenAIEndpoint(base_url={self.settings.base_url!r})"

    @property
    def requests(self) -> int:
        """HTTP requests sent so far, retries included."""
        return self._requests

    @property
    def retries(self) -> int:
        """Requests that were retries of an earlier one."""
        return self._retries

    def chat(self, **params: Any) -> ChatResponse:
        """Send one chat-completion request, retrying what is worth retrying.

        Args:
            **params: Arguments of ``client.chat.completions.create`` (``model``,
                ``messages``, ``max_tokens``, ...).

        Returns:
            The response's choices and the attempts it took.

        Raises:
            EndpointError: A status that is not retried, retries exhausted, or a body that
                is not a completion with choices.
        """
        import openai

        attempt = 0
        while True:
            attempt += 1
            with self._lock:
                self._requests += 1
            try:
                raw = self._client.chat.completions.with_raw_response.create(**params)
                text = raw.http_response.text
            except openai.APIStatusError as exc:
                status = exc.status_code
                retryable = status == 429 or status >= 500
                reason, wait_hint = f"http_{status}", parse_retry_after(exc.response.headers)
                detail = f"HTTP {status}: {self._excerpt(exc.message)}"
            except openai.APITimeoutError:
                retryable, reason, status, wait_hint = True, "timeout", None, None
                detail = f"no answer within {self.settings.timeout_s:g} s"
            except openai.APIConnectionError as exc:
                retryable, reason, status, wait_hint = True, "connection", None, None
                detail = f"connection failed ({self._excerpt(str(exc.__cause__ or exc))})"
            else:
                return ChatResponse(self._choices(text, attempt), attempt)

            if not retryable or attempt > self.settings.max_retries:
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                if retryable:
                    log.info("%s: %s; giving up%s", self._where(params), detail, tries)
                raise EndpointError(
                    f"{self._where(params)}: {detail}{tries}",
                    reason=reason,
                    status=status,
                    attempts=attempt,
                ) from None  # the client's exception holds the request, key included
            delay = backoff_delay(
                attempt - 1,
                self.settings.backoff_base_s,
                self.settings.backoff_max_s,
                wait_hint,
                self._rng,
            )
            log.debug(
                "%s: %s; retry %d/%d in %.2f s",
                self._where(params),
                detail,
                attempt,
                self.settings.max_retries,
                delay,
            )
            with self._lock:
                self._retries += 1
            self._sleep(delay)

    def close(self) -> None:
        """Close the client's connections."""
        self._client.close()

    def _choices(self, text: str, attempts: int) -> list[dict[str, Any]]:
        try:
            body = json.loads(text)
        except ValueError:
            raise EndpointError(
                f"{self._where()}: the response is not JSON: {self._excerpt(text)!r}",
                reason="malformed_json",
                status=200,
                attempts=attempts,
            ) from None
        choices = body.get("choices") if isinstance(body, dict) else None
        if not isinstance(choices, list) or not choices:
            raise EndpointError(
                f"{self._where()}: the response has no choices: {self._excerpt(text)!r}",
                reason="no_choices",
                status=200,
                attempts=attempts,
            )
        if not all(isinstance(c, dict) for c in choices):
            raise EndpointError(
                f"{self._where()}: the response's choices are not objects: {self._excerpt(text)!r}",
                reason="malformed_json",
                status=200,
                attempts=attempts,
            )
        # Servers may list choices out of order; `index` says which is which.
        return sorted(choices, key=lambda c: c["index"] if isinstance(c.get("index"), int) else 0)

    def _where(self, params: Mapping[str, Any] | None = None) -> str:
        model = f" (model {params['model']})" if params and "model" in params else ""
        return f"OpenAI-compatible endpoint {self.settings.base_url}{model}"

    def _excerpt(self, text: str) -> str:
        if self._secret:
            text = text.replace(self._secret, "***")
        return text if len(text) <= _EXCERPT else text[:_EXCERPT] + "..."
