"""Edit budgets: a token bucket per rate-limit scope, shared by every answer streaming there, that a
429 pauses and slows.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.platform import Place, Platform


class EditBudget:
    """A token bucket shared by every stream in one rate-limit scope; a 429 pauses and slows it."""

    def __init__(
        self,
        *,
        per_minute: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._rate = per_minute / 60.0
        self._full_rate = self._rate
        self._burst = max(1, burst)
        self._tokens = float(self._burst)
        self._clock = clock
        self._sleep = sleep  # waits on `clock`'s time: tests pass one they control
        self._stamp = clock()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self.rate_limited = 0

    def _refill(self, now: float) -> None:
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        # Recover gradually towards the full rate after a slowdown.
        if self._rate < self._full_rate and now >= self._paused_until:
            self._rate = min(self._full_rate, self._rate * 1.05)

    async def acquire(self) -> None:
        """Wait for one edit's worth of budget; callers are served first come, first served."""
        async with self._lock:
            while True:
                now = self._clock()
                self._refill(now)
                if now < self._paused_until:
                    await self._sleep(self._paused_until - now)
                    continue
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await self._sleep((1.0 - self._tokens) / self._rate)

    def slow_down(self, retry_after: float) -> None:
        """The platform said 429: pause the scope and halve its rate."""
        self.rate_limited += 1
        self._paused_until = max(self._paused_until, self._clock() + retry_after)
        self._rate = max(self._full_rate / 8, self._rate / 2)
        self._tokens = 0.0


@dataclass
class EditBudgets:
    """Budgets per (platform, scope), created on first use from the platform's capabilities."""

    clock: Callable[[], float] = time.monotonic
    _budgets: dict[str, EditBudget] = field(default_factory=dict)

    def for_place(self, platform: Platform, place: Place) -> EditBudget:
        key = f"{platform.name}:{platform.rate_scope(place)}"
        budget = self._budgets.get(key)
        if budget is None:
            caps = platform.capabilities
            budget = EditBudget(
                per_minute=caps.scope_edits_per_minute, burst=caps.scope_burst, clock=self.clock
            )
            self._budgets[key] = budget
        return budget
