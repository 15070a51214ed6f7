"""Client-side pacing of Discord's global rate limit: 50 requests per second per bot, interaction
endpoints exempt (platforms.md D3, discord.com/developers/docs/topics/rate-limits#global-rate-limit).

discord.py only reacts to a global 429 (it pauses every request for `retry_after`); it never paces
ahead of one. With several instances on one database, each would send up to 50/s and together they
would draw 429s. Each instance therefore paces at its share of the limit (`set_share`, fed by the
lease in bot/jobs/shares.py through `Engine.shares`), so that together they stay within it.

The pacer counts requests in a sliding window: at most `limit` requests in any `span_s` seconds,
which lets a burst of `limit` through at once and never more than `limit` in any second. (A token
bucket with a burst of `limit` would let 2 x `limit` through in the second after an idle spell.)
The window is a little longer than a second so that network jitter between this process and
Discord does not turn an exact count into a 429.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import discord

GLOBAL_PER_S = 50  # Discord's global limit per bot token
SPAN_S = 1.1  # one second plus a margin for jitter between our clock and Discord's arrivals

# Routes that reach Discord as interaction endpoints: the callback, and the interaction webhook
# (the application's id with the interaction token: the original response and follow-ups).
INTERACTION_CALLBACK = "/interactions/"
WEBHOOK_WITH_TOKEN = "/webhooks/{webhook_id}/{webhook_token}"


class GlobalPacer:
    """Waits before each REST request that counts toward Discord's global limit until this
    instance's share of it allows the request."""

    def __init__(
        self,
        *,
        per_s: int = GLOBAL_PER_S,
        span_s: float = SPAN_S,
        application_id: Callable[[], int | None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.per_s = per_s
        self.span_s = span_s
        self.limit = per_s  # requests allowed in any span_s seconds, at the current share
        self.share = 1.0
        self._application_id = application_id
        self._clock = clock
        self._sleep = sleep
        self._stamps: deque[float] = deque()  # when each request in the window was let through
        self._waiting = 0  # requests queued behind the window; newcomers queue behind them
        self._lock = asyncio.Lock()  # FIFO: the waiters go in the order they came
        self.held = 0  # requests that had to wait (for bench/ and tests)

    def set_share(self, share: float) -> None:
        """This instance's share (0-1] of the limit, from the rate lease; at least 1 request per span."""
        self.share = share
        self.limit = max(1, math.floor(self.per_s * share))

    def exempt(self, route: Any) -> bool:
        """Interaction callbacks and the interaction webhook (application id + token) are exempt."""
        path: str = route.path
        if path.startswith(INTERACTION_CALLBACK):
            return True
        if path.startswith(WEBHOOK_WITH_TOKEN):
            app_id = self._application_id()
            return app_id is not None and str(route.webhook_id) == str(app_id)
        return False

    def try_take(self) -> bool:
        """Let one request through now if the window has room and nobody queues; no await."""
        if self._waiting:
            return False
        now = self._clock()
        if self._delay(now) > 0.0:
            return False
        self._stamps.append(now)
        return True

    async def take(self) -> None:
        """Wait until the window has room for one more request, in turn, and count it."""
        self.held += 1
        self._waiting += 1
        try:
            async with self._lock:
                while (delay := self._delay(self._clock())) > 0.0:
                    await self._sleep(delay)
                self._stamps.append(self._clock())
        finally:
            self._waiting -= 1

    def _delay(self, now: float) -> float:
        stamps = self._stamps
        while stamps and now - stamps[0] >= self.span_s:
            stamps.popleft()
        over = len(stamps) - self.limit
        if over < 0:
            return 0.0
        # After a share went down the window may hold more than the limit: wait for enough to age out.
        return stamps[over] + self.span_s - now

    def install(self, http: discord.http.HTTPClient) -> None:
        """Pace every REST call of this discord.py client.

        discord.py offers no hook before a request: every REST call of the client goes through
        `HTTPClient.request(route, ...)` (its per-route buckets and 429 retries live there), so the
        instance's bound `request` is replaced by one that waits on this pacer first. Interaction
        responses go through discord.py's webhook adapter, not this method; `exempt` lets them
        through should one come here. Retries after a 429 inside `request` are not paced again.
        """
        original: Callable[..., Awaitable[Any]] = http.request

        async def request(route: discord.http.Route, **kwargs: Any) -> Any:
            if not self.exempt(route) and not self.try_take():
                await self.take()
            return await original(route, **kwargs)

        # mypy forbids assigning to a method; the instance attribute shadows the class's method.
        setattr(http, "request", request)  # noqa: B010
