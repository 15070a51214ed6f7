"""Client-side pacing of Slack Web API calls, per method and workspace, at Slack's published limits.

The engine paces edits from its own per-workspace budget; this keeps every other call (stream starts
and stops, status, posts, uploads, reads) inside Slack's limits too, so that bursts queue here
instead of drawing 429s (docs.slack.dev/apis/web-api/rate-limits, platforms.md S3).

Several instances on one database each pace at their share of every limit (`set_share`, fed by the
lease in bot/jobs/shares.py), so that together they stay within Slack's. Interim chat.update edits
spend only what the finals of the answers in progress will not need (`reserve`, `room_beyond_finals`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

SPAN_S = 61.0  # Slack counts per minute; one spare second absorbs clock and network skew
RESERVATION_S = 300.0  # a reservation for a final left behind (a crash mid-answer) lapses after this


@dataclass(frozen=True)
class Limit:
    per_minute: int  # per method per workspace, over any 60 s window (Slack's tiers are "N+ per minute")
    per_channel_per_s: float = 0.0  # posting methods: about 1 message per second per channel...
    channel_burst: int = 3  # ...with "short bursts >1 allowed"


TIER_1, TIER_2, TIER_3, TIER_4 = Limit(1), Limit(20), Limit(50), Limit(100)
POSTING = Limit(300, per_channel_per_s=1.0)  # the workspace-wide cap is unpublished: keep it modest

LIMITS: dict[str, Limit] = {
    "chat.postMessage": POSTING,
    # Tier 2 in Slack's method spec (platforms.md S7 found none); it posts a message, so it is
    # also held to the posting limit per channel.
    "chat.startStream": Limit(20, per_channel_per_s=1.0),
    "chat.appendStream": TIER_4,
    "chat.stopStream": TIER_2,
    "chat.update": TIER_3,
    "chat.delete": TIER_3,
    "chat.postEphemeral": TIER_4,
    # "Special" and unpublished: Tier 3 here; statuses are cosmetic and are dropped rather than queued.
    "assistant.threads.setStatus": TIER_3,
    "assistant.threads.setSuggestedPrompts": TIER_4,
    "conversations.history": TIER_3,
    "conversations.replies": TIER_3,
    "conversations.open": TIER_3,
    "users.info": TIER_4,
    "files.getUploadURLExternal": TIER_4,
    "files.completeUploadExternal": TIER_4,
    "files.info": TIER_4,
    "auth.test": TIER_4,
}


class _Window:
    """At most `limit` calls in any SPAN_S seconds."""

    def __init__(self, limit: int) -> None:
        self.whole = limit
        self.limit = limit
        self.stamps: deque[float] = deque()
        self.blocked_until = 0.0

    def wait(self, now: float) -> float:
        while self.stamps and now - self.stamps[0] >= SPAN_S:
            self.stamps.popleft()
        if now < self.blocked_until:
            return self.blocked_until - now
        if len(self.stamps) >= self.limit:
            return self.stamps[0] + SPAN_S - now
        return 0.0

    def take(self, now: float) -> None:
        self.stamps.append(now)

    def share(self, share: float) -> None:
        self.limit = max(1, math.floor(self.whole * share))


class _Bucket:
    """`rate` per second with a burst of `burst`."""

    def __init__(self, rate: float, burst: int) -> None:
        self.whole_rate, self.whole_burst = rate, burst
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp: float | None = None
        self.blocked_until = 0.0

    def wait(self, now: float) -> float:
        if self.stamp is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if now < self.blocked_until:
            return self.blocked_until - now
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self.tokens -= 1.0

    def share(self, share: float) -> None:
        self.rate = self.whole_rate * share
        self.burst = max(1.0, self.whole_burst * share)
        self.tokens = min(self.tokens, self.burst)


class Pacer:
    """Waits before each call until Slack's limit for (workspace, method[, channel]) allows it."""

    def __init__(
        self,
        *,
        limits: dict[str, Limit] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._limits = LIMITS if limits is None else limits
        self._clock = clock
        self._sleep = sleep
        self._gates: dict[tuple[str, ...], _Window | _Bucket] = {}
        self._locks: dict[tuple[str, ...], asyncio.Lock] = {}
        self._share = 1.0
        # Finals to come, per (team, method): reservation holder -> when it was made.
        self._reserved: dict[tuple[str, str], dict[object, float]] = {}
        self.waited_s = 0.0  # total time calls spent queued here

    @property
    def share(self) -> float:
        return self._share

    def set_share(self, share: float) -> None:
        """This instance may make `share` (0-1] of the calls Slack allows (several instances on one
        database split each limit between them)."""
        self._share = min(1.0, max(share, 1e-3))
        for gate in self._gates.values():
            gate.share(self._share)

    def reserve(self, method: str, team: str, holder: object) -> None:
        """Keep a call of `method` for `holder`'s final (until `release`)."""
        self._reserved.setdefault((team, method), {})[holder] = self._clock()

    def release(self, method: str, team: str, holder: object) -> None:
        self._reserved.get((team, method), {}).pop(holder, None)

    def reserved(self, method: str, team: str) -> int:
        """How many finals of `method` the answers in progress will need (lapsed ones forgotten)."""
        held = self._reserved.get((team, method), {})
        now = self._clock()
        for holder in [h for h, at in held.items() if now - at > RESERVATION_S]:
            del held[holder]
        return len(held)

    def _keys(self, method: str, team: str, channel: str) -> list[tuple[str, ...]]:
        limit = self._limits.get(method)
        if limit is None:
            return []
        keys: list[tuple[str, ...]] = []
        if limit.per_channel_per_s and channel:
            channel_key = (team, "post", channel)  # postMessage and startStream share a channel's limit
            if channel_key not in self._gates:
                bucket = _Bucket(limit.per_channel_per_s, limit.channel_burst)
                bucket.share(self._share)
                self._gates[channel_key] = bucket
            keys.append(channel_key)
        key = (team, method)
        if key not in self._gates:
            window = _Window(limit.per_minute)
            window.share(self._share)
            self._gates[key] = window
        keys.append(key)
        return keys

    async def acquire(self, method: str, team: str, channel: str = "") -> None:
        """Wait for a slot (first come, first served per gate), then take it."""
        for key in self._keys(method, team, channel):
            lock = self._locks.setdefault(key, asyncio.Lock())
            async with lock:
                gate = self._gates[key]
                while (wait := gate.wait(self._clock())) > 0:
                    self.waited_s += wait
                    await self._sleep(wait)
                gate.take(self._clock())

    def room_beyond_finals(self, method: str, team: str) -> bool:
        """Whether an interim edit may take a slot of `method` now and leave one for each final the
        answers in progress will need (an interim edit without room is skipped: the final shows
        everything)."""
        keys = self._keys(method, team, "")
        if not keys:
            return True
        gate = self._gates[keys[-1]]
        assert isinstance(gate, _Window)
        now = self._clock()
        if gate.wait(now) > 0:  # also drops the stamps that left the window
            return False
        return len(gate.stamps) + self.reserved(method, team) < gate.limit

    def try_acquire(self, method: str, team: str, channel: str = "") -> bool:
        """Take a slot only if one is free now (for cosmetic calls better dropped than late)."""
        keys = self._keys(method, team, channel)
        now = self._clock()
        for key in keys:
            lock = self._locks.get(key)
            if (lock is not None and lock.locked()) or self._gates[key].wait(now) > 0:
                return False
        for key in keys:
            self._gates[key].take(now)
        return True

    def headroom(self, method: str, team: str) -> int:
        """How many calls of `method` the workspace may still make in the current window."""
        keys = self._keys(method, team, "")
        if not keys:
            return 1 << 30
        gate = self._gates[keys[-1]]
        assert isinstance(gate, _Window)
        now = self._clock()
        if gate.wait(now) > 0 and now < gate.blocked_until:
            return 0
        return max(0, gate.limit - len(gate.stamps))

    def would_wait(self, method: str, team: str, channel: str = "") -> bool:
        now = self._clock()
        return any(self._gates[k].wait(now) > 0 for k in self._keys(method, team, channel))

    def penalize(self, method: str, team: str, channel: str, retry_after: float) -> None:
        """Slack answered 429 anyway: hold every gate of the call for `retry_after` seconds."""
        until = self._clock() + retry_after
        for key in self._keys(method, team, channel):
            gate = self._gates[key]
            gate.blocked_until = max(gate.blocked_until, until)
