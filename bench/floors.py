"""What a platform's limits allow a burst at best: the fakes' rate limits as gates (Discord's fixed
windows, Slack's sliding per-minute windows and per-channel token buckets) and `floor`, the best
final lags of a schedule that spends no call on interim edits.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bench.bursts import pct


class Gate(Protocol):
    def take(self, ready: float) -> float:
        """The earliest time at or after `ready` a request may go; it is counted then."""
        ...


@dataclass
class FixedWindow:
    """Discord's fake: `limit` requests per `period`, the window opened by its first request."""

    limit: int
    period: float
    start: float = float("-inf")
    used: int = 0

    def take(self, ready: float) -> float:
        at = max(ready, self.start)  # first come, first served
        if at - self.start >= self.period:
            self.start, self.used = at, 0
        if self.used >= self.limit:
            at = self.start = self.start + self.period
            self.used = 0
        self.used += 1
        return at


@dataclass
class SlidingWindow:
    """Slack's fake tiers: at most `limit` requests in any `period` seconds."""

    limit: int
    period: float = 60.0
    stamps: deque[float] = field(default_factory=deque)

    def take(self, ready: float) -> float:
        at = max(ready, self.stamps[-1]) if self.stamps else ready  # first come, first served
        if len(self.stamps) >= self.limit:
            at = max(at, self.stamps[-self.limit] + self.period)
        self.stamps.append(at)
        return at


@dataclass
class TokenBucket:
    """Slack's fake posting limit per channel: `rate` a second with a burst of `burst`."""

    rate: float
    burst: int
    tokens: float = -1.0
    stamp: float | None = None

    def take(self, ready: float) -> float:
        if self.stamp is None:
            self.tokens, self.stamp = float(self.burst), ready
        at = max(ready, self.stamp)
        self.tokens = min(self.burst, self.tokens + (at - self.stamp) * self.rate)
        if self.tokens < 1.0:
            at += (1.0 - self.tokens) / self.rate
            self.tokens = 1.0
        self.tokens -= 1.0
        self.stamp = at
        return at


# (gate of answer i's posts, gate of its edits): fresh gates for one simulated schedule.
Gates = Callable[[], tuple[Callable[[int], Gate], Callable[[int], Gate]]]


def floor(starts: Sequence[float], ends: Sequence[float], gates: Gates) -> dict[str, Any]:
    """The best final lags the limits allow these streams: the first k answers (by start) post their
    first words as their streams start, and every answer is finished by one request as its stream
    ends (an edit, or a post of the whole answer when none was posted), in the order streams end;
    no interim edits. The best k (lowest p99, then p50, then the most first words at once) is kept."""
    order = sorted(range(len(starts)), key=lambda i: starts[i])
    best: dict[str, Any] = {}
    for k in range(len(starts) + 1):
        post_gate, edit_gate = gates()
        early = set(order[:k])
        requests = sorted([(starts[i], 0, i) for i in early] + [(ends[i], 1, i) for i in order])
        posted: dict[int, float] = {}
        lags: list[float] = []
        for ready, final, i in requests:
            if not final:
                posted[i] = post_gate(i).take(ready)
            elif i in posted and posted[i] >= ends[i]:
                lags.append(posted[i] - ends[i])  # its first post came too late to be edited: it was whole
            else:
                gate = edit_gate(i) if i in posted else post_gate(i)
                lags.append(gate.take(ready) - ends[i])
        p50, p99 = pct(lags, 50), pct(lags, 99)
        if not best or (p99, p50) <= (best["final_lag_s_p99"], best["final_lag_s_p50"]):
            best = {"final_lag_s_p50": p50, "final_lag_s_p99": p99, "first_words_at_once": k}
    return best
