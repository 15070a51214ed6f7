"""Edit budgets: a token bucket per rate-limit scope, shared by every answer streaming there, that a
429 pauses and slows, and that serves the calls waiting for it in order of what they finish.

The scheduler (issue 15, part 3): a final edit (an answer whose stream has ended) goes before an
answer's first words, which go before interim edits of answers still streaming; within one kind,
first come, first served. So finals come out in the order their streams ended, and interim edits
spend only what finals leave. A `share` below 1 (several instances on one database, see
bot/streaming/shares.py) scales the rate and the burst: the instances together stay within the
platform's limit.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum

from bot.platform import Place, Platform

WINDOW_MARGIN_S = 0.05  # a fixed window is taken as this much longer: the platform's opens a little later


class Turn(IntEnum):
    """What a call waiting for budget does; the lower, the sooner it is served."""

    FINAL = 0  # an ended answer's final text (or a message sealed on the way to it)
    FIRST = 1  # the first words of a message
    INTERIM = 2  # an interim edit of an answer still streaming


class EditBudget:
    """A token bucket shared by every stream in one rate-limit scope; a 429 pauses and slows it.
    Waiting calls are served by their `Turn`, then first come, first served."""

    def __init__(
        self,
        *,
        per_minute: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        share: float = 1.0,
        window: bool = False,
    ) -> None:
        """`window`: the platform counts `burst` calls per fixed window of burst/rate seconds
        (Discord's X-RateLimit buckets), so that no span that long may hold more: a token bucket
        alone would let calls through that then queue in the platform's client, first come first
        served, with the text they had when they were let through."""
        self._whole_rate = per_minute / 60.0  # the platform's limit for the scope
        self._whole_burst = max(1, burst)
        self._share = 1.0
        self._full_rate = self._rate = self._whole_rate
        self._burst = float(self._whole_burst)
        self._tokens = self._burst
        self._clock = clock
        self._sleep = sleep  # waits on `clock`'s time: tests pass one they control
        self._stamp = clock()
        self._paused_until = 0.0
        self._queue: list[tuple[int, int]] = []  # (turn, arrival) of the calls waiting, a heap
        self._arrivals = itertools.count()
        self._changed = asyncio.Event()  # the head of the queue changed
        self._window = window
        self._span = max(1, burst) / self._whole_rate + WINDOW_MARGIN_S if window else 0.0
        self._calls: deque[float] = deque()  # when the calls of the last span were let through
        self.rate_limited = 0
        self.set_share(share)

    @property
    def share(self) -> float:
        return self._share

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def set_share(self, share: float) -> None:
        """This instance may use `share` (0-1] of the scope's limit: rate and burst scale with it."""
        share = min(1.0, max(share, 1e-3))
        now = self._clock()
        self._refill(now)
        slowed = self._rate / self._full_rate if self._full_rate else 1.0
        self._share = share
        self._full_rate = self._whole_rate * share
        self._rate = self._full_rate * slowed
        self._burst = max(1.0, self._whole_burst * share)
        self._tokens = min(self._tokens, self._burst)

    def _refill(self, now: float) -> None:
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        # Recover gradually towards the full rate after a slowdown.
        if self._rate < self._full_rate and now >= self._paused_until:
            self._rate = min(self._full_rate, self._rate * 1.05)

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def acquire(self, turn: Turn = Turn.INTERIM) -> None:
        """Wait for one call's worth of budget. A cancelled wait takes nothing."""
        ticket = (int(turn), next(self._arrivals))
        heapq.heappush(self._queue, ticket)
        if self._queue[0] == ticket:
            self._wake()  # a call that waited at the head is no longer first
        try:
            while True:
                if self._queue[0] != ticket:
                    await self._changed.wait()
                    continue
                now = self._clock()
                self._refill(now)
                if now < self._paused_until:
                    await self._sleep(self._paused_until - now)
                    continue
                if (wait := self._window_wait(now)) > 0:
                    await self._sleep(wait)
                    continue
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    if self._window:
                        self._calls.append(now)
                    return
                await self._sleep((1.0 - self._tokens) / self._rate)
        finally:
            head = self._queue[0] == ticket
            self._queue.remove(ticket)
            heapq.heapify(self._queue)
            if head:
                self._wake()

    def _window_wait(self, now: float) -> float:
        """How long until the last span holds fewer calls than the (shared) burst allows."""
        if not self._window:
            return 0.0
        while self._calls and now - self._calls[0] >= self._span:
            self._calls.popleft()
        allowed = max(1, math.floor(self._burst))
        if len(self._calls) < allowed:
            return 0.0
        return self._calls[len(self._calls) - allowed] + self._span - now

    def slow_down(self, retry_after: float) -> None:
        """The platform said 429: pause the scope and halve its rate."""
        self.rate_limited += 1
        self._paused_until = max(self._paused_until, self._clock() + retry_after)
        self._rate = max(self._full_rate / 8, self._rate / 2)
        self._tokens = 0.0


@dataclass
class EditBudgets:
    """Budgets per (platform, scope[, kind]), created on first use from the platform's capabilities;
    `set_share` scales them all (and those made later)."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _budgets: dict[str, EditBudget] = field(default_factory=dict)
    _share: float = 1.0

    def for_place(self, platform: Platform, place: Place, *, posting: bool = False) -> EditBudget:
        """The budget of an edit in `place`; `posting`: of a new message's first call, which draws
        from a budget of its own where the platform limits posts and edits apart."""
        caps = platform.capabilities
        kind = ":post" if posting and caps.scope_posts_apart else ""
        key = f"{platform.name}:{platform.rate_scope(place)}{kind}"
        budget = self._budgets.get(key)
        if budget is None:
            budget = EditBudget(
                per_minute=caps.scope_edits_per_minute,
                burst=caps.scope_burst,
                clock=self.clock,
                sleep=self.sleep,
                share=self._share,
                window=caps.scope_fixed_windows,
            )
            self._budgets[key] = budget
        return budget

    @property
    def share(self) -> float:
        return self._share

    def set_share(self, share: float) -> None:
        self._share = share
        for budget in self._budgets.values():
            budget.set_share(share)


class Shares:
    """This instance's share of every platform rate budget: 1 when it runs alone, 1/N beside N-1
    others on the same database (kept by bot/jobs/shares.py's lease, in the background). Whatever
    paces calls by a platform's limits subscribes and scales itself by it."""

    def __init__(self) -> None:
        self.value = 1.0
        self._listeners: list[Callable[[float], None]] = []

    def subscribe(self, listener: Callable[[float], None]) -> None:
        self._listeners.append(listener)
        listener(self.value)

    def set(self, value: float) -> None:
        if value != self.value:
            self.value = value
            for listener in self._listeners:
                listener(value)
