"""How one logical call reaches xAI: headers and timeouts, pacing, and retries with backoff before
any content arrived (429 without a credits text, 500/502/503/504, connection failures).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from bot.errors import GrokAuthFailed, GrokError, GrokOutOfCredits, GrokRejected, GrokUnavailable
from bot.grok.pacing import Pacing, Permit, RetryPolicy
from bot.grok.wire import error_for, redact, retry_after_seconds

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# After a credits or spending-limit refusal, no call goes to xAI for this long: every user's
# message would otherwise draw the same refusal at once (reference §10: never retry it in a loop).
CREDITS_PAUSE_S = 60.0
# Transport failures worth a resend: nothing was processed yet, or the connection was reset.
# Read/write timeouts are not among them: the server may still be working (and billing).
RETRY_TRANSPORT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.RemoteProtocolError,
    httpx.ReadError,
)


class Observer(Protocol):
    """Who hears of xAI's refusals (the admin pages count them and alert the admins)."""

    async def refused(self, error: GrokError) -> None:
        """xAI answered a call with `error` (credits, rate limit, ...), before any retry wait."""
        ...


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. `read` waits for a whole non-streamed answer; `stream_read` between two chunks
    (reasoning models may send nothing but empty deltas for a long time)."""

    connect: float = 10.0
    read: float = 300.0
    stream_read: float = 120.0
    write: float = 30.0
    pool: float = 60.0


@dataclass(slots=True)
class Failure:
    """What went wrong with one attempt: an HTTP answer or a transport exception."""

    status: int = 0
    content: bytes = b""
    retry_after: float | None = None
    exc: httpx.TransportError | None = None

    @classmethod
    def of(cls, response: httpx.Response) -> Failure:
        return cls(
            status=response.status_code,
            content=response.content,
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
        )


class Attempts:
    """Retry state of one call: backoff per the policy, and the single resend without
    `reasoning_effort` (Chat Completions) or `reasoning` (Responses) after a 400 that mentions
    reasoning (reference §2)."""

    def __init__(self, transport: Transport, body: dict[str, Any] | None) -> None:
        self.body = body
        self._transport = transport
        self._retries = 0
        self._dropped_reasoning = False

    async def recover(self, failure: Failure) -> None:
        """Return when another attempt should be made, else raise the mapped error."""
        secret = self._transport.api_key
        if failure.exc is not None:
            kind = type(failure.exc).__name__
            error: GrokError = GrokUnavailable(
                f"xAI could not be reached: {kind}: {redact(str(failure.exc), secret)}"
            )
            retryable = isinstance(failure.exc, RETRY_TRANSPORT)
        else:
            error = error_for(failure.status, failure.content, secret=secret, retry_after=failure.retry_after)
            if self._drop_reasoning(failure, error):
                return
            await self._transport.heard(error)
            # Credit and spending-limit texts come back as 429 too: never retried.
            retryable = failure.status in RETRY_STATUSES and not isinstance(error, GrokAuthFailed)
        self._retries += 1
        policy = self._transport.retry
        delay = policy.delay(self._retries, retry_after=failure.retry_after) if retryable else None
        if delay is None:
            raise error
        why = failure.status or type(failure.exc).__name__
        log.warning("grok retry %d/%d after %s in %.2fs", self._retries, policy.attempts - 1, why, delay)
        await self._transport.sleep(delay)

    def _drop_reasoning(self, failure: Failure, error: GrokError) -> bool:
        key = next((k for k in ("reasoning_effort", "reasoning") if k in (self.body or ())), None)
        if (
            failure.status != 400
            or self.body is None
            or key is None
            or self._dropped_reasoning
            or not isinstance(error, GrokRejected)
            or "reasoning" not in str(error).lower()
        ):
            return False
        self._dropped_reasoning = True
        self.body = {k: v for k, v in self.body.items() if k != key}
        log.warning("%s refused for %s; resending without it", key, self.body.get("model"))
        return True


class Transport:
    """The shared httpx client with xAI's base URL, key, timeouts, pacing and retry policy."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        api_key: str,
        base_url: str,
        pacing: Pacing,
        retry: RetryPolicy,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        timeouts: Timeouts | None = None,
        observer: Observer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.observer = observer
        self.clock = clock
        self._paused_until = float("-inf")
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.pacing = pacing
        self.retry = retry
        self.sleep = sleep
        t = timeouts or Timeouts()
        self.timeout = httpx.Timeout(t.read, connect=t.connect, write=t.write, pool=t.pool)
        self.stream_timeout = httpx.Timeout(t.stream_read, connect=t.connect, write=t.write, pool=t.pool)
        self.headers = {"Authorization": f"Bearer {api_key}"}

    def check_open(self) -> None:
        """Raise GrokOutOfCredits instead of calling xAI while a credits refusal's pause lasts."""
        left = self._paused_until - self.clock()
        if left > 0:
            raise GrokOutOfCredits("xAI calls are paused after a credits refusal", retry_in=left)

    async def heard(self, error: GrokError) -> None:
        """Pause after a credits refusal, and tell the observer of the refusal."""
        if isinstance(error, GrokOutOfCredits):
            self._paused_until = self.clock() + CREDITS_PAUSE_S
            error.retry_in = CREDITS_PAUSE_S
        if self.observer is not None:
            await self.observer.refused(error)

    async def call(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        model: str | None = None,
        tokens: int = 0,
        ok: tuple[int, ...] = (200,),
    ) -> tuple[httpx.Response, Permit | None]:
        """One logical request: paced under `model`'s budget when given, retried per the policy.
        Returns a response whose status is in `ok`, with the pacing permit; raises otherwise."""
        self.check_open()
        attempts = Attempts(self, body)
        url = self.base_url + path
        while True:
            slot: AbstractAsyncContextManager[Permit | None] = (
                self.pacing.slot(model, tokens=tokens) if model is not None else nullcontext()
            )
            async with slot as permit:
                try:
                    response = await self.http.request(
                        method,
                        url,
                        json=attempts.body,
                        headers=headers or self.headers,
                        timeout=self.timeout,
                    )
                except httpx.TransportError as exc:
                    failure = Failure(exc=exc)
                else:
                    if response.status_code in ok:
                        return response, permit
                    failure = Failure.of(response)
            await attempts.recover(failure)  # outside the slot: waiting holds no capacity


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The body as a JSON object, or GrokUnavailable."""
    try:
        value = response.json()
    except ValueError:
        raise GrokUnavailable(
            f"xAI sent an unreadable answer ({response.status_code})", status=response.status_code
        ) from None
    if not isinstance(value, dict):
        raise GrokUnavailable("xAI sent an unexpected answer", status=response.status_code)
    return value
