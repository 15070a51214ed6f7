"""Client-side limits that keep a busy bot under xAI's rate limits (it queues instead of drawing
429s): one concurrency limit and per-model requests- and tokens-per-minute budgets; plus the one
retry policy (exponential backoff with full jitter, honouring Retry-After).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Budget:
    """Per-model limits: requests and tokens (prompt + completion + reasoning) per minute."""

    rpm: int = 480
    tpm: int = 2_000_000


WINDOW = 60.0  # seconds: the "minute" of requests and tokens per minute
# Requests open at once. xAI limits requests and tokens per minute, not concurrency; this only keeps
# a burst from opening more connections than the shared pool holds. Each person waiting for an
# answer holds one, so it is sized for a busy community, not a handful.
CONCURRENCY = 64


class _Entry:
    __slots__ = ("alive", "amount", "time")

    def __init__(self, time: float, amount: int) -> None:
        self.time = time
        self.amount = amount
        self.alive = True  # still inside its window


class _Window:
    """A sliding 60 s log of (time, amount): never more than `limit` within any minute, which is
    what a per-minute server limit allows (a refilling bucket could burst to twice that)."""

    __slots__ = ("events", "limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.events: deque[_Entry] = deque()  # oldest first

    def prune(self, now: float) -> None:
        events = self.events
        while events and events[0].time <= now - WINDOW:
            entry = events.popleft()
            self.used -= entry.amount
            entry.alive = False

    def wait_for(self, amount: int, now: float) -> float:
        """Seconds until `amount` more fits (after `prune(now)`)."""
        excess = self.used + amount - self.limit
        if excess <= 0:
            return 0.0
        for entry in self.events:
            excess -= entry.amount
            if excess <= 0:
                return entry.time + WINDOW - now
        return WINDOW

    def add(self, amount: int, now: float) -> _Entry:
        entry = _Entry(now, amount)
        self.events.append(entry)
        self.used += amount
        return entry

    def restamp(self, entry: _Entry, now: float) -> None:
        """Move `entry` to `now` (it was admitted earlier but sent only now), keeping time order."""
        if entry.alive and now > entry.time:
            for index, other in enumerate(self.events):
                if other is entry:
                    del self.events[index]
                    break
            entry.time = now
            self.events.append(entry)


class _ModelPace:
    __slots__ = ("lock", "requests", "tokens")

    def __init__(self, budget: Budget) -> None:
        self.lock = asyncio.Lock()  # FIFO: waiters for one model queue in arrival order
        self.requests = _Window(budget.rpm)
        self.tokens = _Window(budget.tpm)


class Permit:
    """One admitted request. `settle` corrects the token budget with the real count."""

    __slots__ = ("_entry", "_window")

    def __init__(self, window: _Window, entry: _Entry) -> None:
        self._window = window
        self._entry = entry

    def settle(self, actual_tokens: int) -> None:
        entry = self._entry
        if entry.alive:
            self._window.used += actual_tokens - entry.amount
            entry.amount = actual_tokens


class Pacing:
    """Admits requests within the concurrency limit and each model's budget, waiting as needed."""

    def __init__(
        self,
        *,
        concurrency: int = CONCURRENCY,
        rpm: int = 480,
        tpm: int = 2_000_000,
        budgets: Mapping[str, Budget] | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.concurrency = concurrency
        self._semaphore = asyncio.Semaphore(concurrency)
        self._default = Budget(rpm=rpm, tpm=tpm)
        self._budgets = dict(budgets or {})
        self._paces: dict[str, _ModelPace] = {}
        self._clock = clock
        self._sleep = sleep
        self.in_flight = 0

    @asynccontextmanager
    async def slot(self, model: str, *, tokens: int = 0) -> AsyncIterator[Permit]:
        """Wait for `model`'s budget (one request, `tokens` estimated tokens), then for a free
        concurrency slot; hold the slot until the block ends."""
        pace = self._paces.get(model)
        if pace is None:
            pace = self._paces[model] = _ModelPace(self._budgets.get(model, self._default))
        tokens = min(tokens, pace.tokens.limit)
        async with pace.lock:
            while True:
                now = self._clock()
                pace.requests.prune(now)
                pace.tokens.prune(now)
                wait = max(pace.requests.wait_for(1, now), pace.tokens.wait_for(tokens, now))
                if wait <= 0:
                    break
                await self._sleep(wait + 0.001)
            request = pace.requests.add(1, now)
            entry = pace.tokens.add(tokens, now)
        async with self._semaphore:
            sent = self._clock()
            if sent > now:  # waited for a free slot: the server counts the request from now
                pace.requests.restamp(request, sent)
                pace.tokens.restamp(entry, sent)
            self.in_flight += 1
            try:
                yield Permit(pace.tokens, entry)
            finally:
                self.in_flight -= 1


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`attempts` tries in all. Waits are full-jitter exponential (uniform in [0, min(cap,
    base * 2**n)]), or exactly the server's Retry-After when it gives one no longer than
    `max_retry_after` (a longer one is not waited out: the error goes up with it)."""

    attempts: int = 4
    base: float = 0.5
    cap: float = 20.0
    max_retry_after: float = 60.0

    def delay(
        self,
        retry: int,
        *,
        retry_after: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> float | None:
        """Seconds to wait before retry number `retry` (1 = the second attempt), None to give up."""
        if retry >= self.attempts:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        return rand() * min(self.cap, self.base * 2.0 ** (retry - 1))
