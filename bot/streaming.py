"""Turns a stream of text deltas into paced platform edits: first text at once, then merged edits at
most once per edit interval, shared per-scope edit budgets, splitting past the length limit without
breaking a code block, and a final text that always lands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bot.errors import AnswerStopped, PlatformError, PlatformRateLimited
from bot.platform import Image, Place, Platform, Reply

log = logging.getLogger(__name__)

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
FINAL_ATTEMPTS = 6
# A message that cannot be edited for longer than this (a stalled bucket, an expired interaction
# token) is left as shown and the answer goes on in a new message, instead of hanging.
LONG_STALL_S = 5.0
BLOCKED_CLOSE_S = 120.0  # how long a left-behind message may take to accept its final edit


# -- splitting ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fence:
    marker: str  # ``` or ~~~ (possibly longer)
    info: str  # the language tag


def open_fence(text: str) -> Fence | None:
    """The code fence still open at the end of `text`, if any."""
    current: Fence | None = None
    for line in text.split("\n"):
        match = FENCE.match(line)
        if not match:
            continue
        marker, info = match.group(1), match.group(2).strip()
        if current is None:
            current = Fence(marker, info)
        elif marker[0] == current.marker[0] and len(marker) >= len(current.marker) and not info:
            current = None
    return current


def cut_point(text: str, limit: int) -> int:
    """Where to cut `text` so the first part is at most `limit` long: a paragraph, line or word end."""
    window = text[:limit]
    for separator in ("\n\n", "\n", " "):
        at = window.rfind(separator)
        if at > limit // 3:
            return at + len(separator)
    return limit


def take_part(carry: str, rest: str, limit: int) -> tuple[str, int, str]:
    """The first message of `carry + rest` within `limit` characters.

    Returns (the part, how many characters of `rest` it used, the carry for the next part): a code
    block cut by the split is closed at the end of this part and reopened, with its language, next.
    """
    body_limit = limit - len(carry)
    cut = cut_point(rest, body_limit)
    fence = open_fence(carry + rest[:cut])
    if fence is not None:
        cut = cut_point(rest, body_limit - len(fence.marker) - 1)
        fence = open_fence(carry + rest[:cut])
    head = carry + rest[:cut]
    if fence is None:
        return head, cut, ""
    return f"{head.rstrip(chr(10))}\n{fence.marker}", cut, f"{fence.marker}{fence.info}\n"


def split_message(text: str, limit: int) -> list[str]:
    """Split an answer into parts of at most `limit` characters, never breaking a code block."""
    if limit < 40:
        raise ValueError("limit too small to split sensibly")
    parts: list[str] = []
    carry, rest = "", text
    while len(carry) + len(rest) > limit:
        head, used, carry = take_part(carry, rest, limit)
        parts.append(head)
        rest = rest[used:]
    parts.append(carry + rest)
    return parts


# -- shared edit budgets --------------------------------------------------------------------------


class EditBudget:
    """A token bucket shared by every stream in one rate-limit scope; a 429 pauses and slows it."""

    def __init__(
        self,
        *,
        per_minute: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rate = per_minute / 60.0
        self._full_rate = self._rate
        self._burst = max(1, burst)
        self._tokens = float(self._burst)
        self._clock = clock
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
                    await asyncio.sleep(self._paused_until - now)
                    continue
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return
                await asyncio.sleep((1.0 - self._tokens) / self._rate)

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


# -- one streamed answer --------------------------------------------------------------------------


MIN_LOOK_S = 0.05  # a writer with a `before_edit` source looks for new text at least this far apart


class StreamWriter:
    """Streams one answer into `place`. `append` never blocks; a flusher task edits in the background.

    Within the current message, each edit shows everything that has arrived (merged), no sooner than
    `interval` after the previous edit of that message, and only with budget from the scope.
    """

    def __init__(
        self,
        platform: Platform,
        place: Place,
        *,
        budgets: EditBudgets,
        reply_to: str = "",
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._platform = platform
        self._place = place
        self._reply_to = reply_to
        self._budget = budgets.for_place(platform, place)
        caps = platform.capabilities
        self._limit = caps.max_message_length
        self._interval = caps.edit_interval if interval is None else interval
        self._clock = clock
        self._pieces: list[str] = []
        self._text = ""  # everything received so far (joined lazily)
        self._prefix = ""  # shown before the streamed text (e.g. "Thought for 3 s")
        self._sealed = 0  # chars of the full text already frozen into finished messages
        self._carry = ""  # a reopened code fence that starts the current message
        self._shown = ""  # what the current message shows
        self._reply: Reply | None = None
        self._replies: list[Reply] = []
        self._last_edit = float("-inf")
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()  # ends the wait between edits at once when the answer ends
        self._closed = False
        self._flusher: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self.edits = 0
        self.first_visible_at: float | None = None
        self.stopped = False  # the person stopped the answer in the chat (AnswerStopped)
        self._visible = 0  # characters of the full text (prefix included) shown so far
        # Called just before each interim edit, so that what the source holds is appended first
        # (the source's task runs during one yield): Gathering.flush for a Grok stream.
        self.before_edit: Callable[[], None] | None = None

    @property
    def text(self) -> str:
        if self._pieces:
            self._text += "".join(self._pieces)
            self._pieces.clear()
        return self._text

    @property
    def message_ids(self) -> list[str]:
        return [r.message_id for r in self._replies if r.message_id]

    async def open(self) -> None:
        """Create the first message and start the flusher."""
        self._reply = await self._platform.start_reply(self._place, reply_to=self._reply_to)
        self._replies.append(self._reply)
        self._flusher = asyncio.create_task(self._flush_loop(), name=f"stream:{self._place.key}")

    async def status(self, text: str) -> None:
        """A transient status before any text (e.g. thinking for N s). A platform may report here
        that the person stopped the answer (the console's Ctrl-C while the model thinks)."""
        if self._reply is not None and not self._shown and not self.text:
            try:
                await self._reply.status(text)
            except AnswerStopped:
                self.stopped = True

    def set_prefix(self, prefix: str) -> None:
        """Text shown before the answer; only settable before the first delta."""
        if not self.text:
            self._prefix = prefix

    def append(self, delta: str) -> None:
        if delta:
            self._pieces.append(delta)
            self._wake.set()

    async def _flush_loop(self) -> None:
        while not self._closed:
            if self.before_edit is None:
                await self._wake.wait()
            else:  # gathered text is appended only when asked for: ask once per interval
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(self._interval, MIN_LOOK_S)):
                        await self._wake.wait()
            self._wake.clear()
            if self._closed:
                return
            wait = self._last_edit + self._interval - self._clock()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._closing.wait()
                if self._closed:
                    return
            if self.before_edit is not None:
                self.before_edit()
                await asyncio.sleep(0)
                if self._closed:
                    return
            try:
                await self._push(final=False)
            except AnswerStopped:
                self.stopped = self._closed = True
                return
            except PlatformRateLimited as exc:
                await self._rate_limited(exc)
                self._wake.set()
            except PlatformError as exc:
                # An interim edit that fails is not fatal: the final edit retries with all text.
                log.warning("interim edit failed in %s: %s", self._place.key, type(exc).__name__)

    def _full(self) -> str:
        return self._prefix + self.text

    async def _push(self, *, final: bool, images: Sequence[Image] = ()) -> None:
        """Show everything received: freeze full messages, then edit (or finish) the current one."""
        full = self._full()
        while len(self._carry) + len(full) - self._sealed > self._limit:
            await self._seal_one(full)
        body = self._carry + full[self._sealed :]
        assert self._reply is not None
        if final:
            await self._budget.acquire()
            await self._reply.finish(body, images=images)
        elif body != self._shown and body.strip():
            await self._budget.acquire()
            await self._reply.update(body)
        else:
            return
        self._shown = body
        self._visible = len(full)
        self._last_edit = self._clock()
        self.edits += 1
        if self.first_visible_at is None:
            self.first_visible_at = self._last_edit

    async def _seal_one(self, full: str) -> None:
        """Finish the current message with as much as fits, and open the next one."""
        assert self._reply is not None
        head, used, carry = take_part(self._carry, full[self._sealed :], self._limit)
        await self._budget.acquire()
        await self._reply.finish(head)
        self.edits += 1
        self._sealed += used
        self._visible = max(self._visible, self._sealed)
        self._carry = carry
        await self._open_next(reply_to=self._reply.message_id)

    async def _open_next(self, *, reply_to: str) -> None:
        self._reply = await self._platform.start_reply(self._place, reply_to=reply_to)
        self._replies.append(self._reply)
        self._shown = ""
        self._last_edit = float("-inf")

    async def _rate_limited(self, exc: PlatformRateLimited) -> None:
        """Slow the scope; when this message stays blocked for long, go on in a new one."""
        if exc.retry_after <= LONG_STALL_S:
            self._budget.slow_down(exc.retry_after)
            return
        # The block is this message's (a stalled bucket, an expired token): slow the scope a
        # little, and let the platform's own limiter pace the new message.
        self._budget.slow_down(1.0)
        await self._move_on()

    async def _move_on(self) -> None:
        """Leave the current message as last shown and continue the answer in a new message."""
        shown = self._shown
        used = len(shown) - len(self._carry) if shown.startswith(self._carry) else 0
        if used > 0:
            fence = open_fence(shown)
            self._carry = f"{fence.marker}{fence.info}\n" if fence is not None else ""
            self._sealed += used
        blocked = self._reply
        log.info("a message in %s is blocked; continuing in a new one", self._place.key)
        await self._open_next(reply_to=blocked.message_id if blocked is not None else self._reply_to)
        if blocked is not None:
            # Drop its in-progress marker once the platform lets us, without holding up the answer.
            task = asyncio.create_task(self._close_blocked(blocked, shown))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _close_blocked(self, reply: Reply, shown: str) -> None:
        try:
            async with asyncio.timeout(BLOCKED_CLOSE_S):
                await self._budget.acquire()
                if shown:
                    await reply.finish(shown)
                else:  # only a status or placeholder was shown: say where the answer went
                    await reply.fail("The answer continues in the next message.")
        except (PlatformError, TimeoutError):
            log.info("a blocked message in %s keeps its in-progress marker", self._place.key)

    async def _stop_flusher(self) -> None:
        self._closed = True
        self._closing.set()
        self._wake.set()
        if self._flusher is not None:
            await self._flusher

    @property
    def shown_text(self) -> str:
        """The part of the answer (without the prefix) that the chat has shown."""
        return self.text[: max(0, self._visible - len(self._prefix))]

    async def finish(self, *, images: Sequence[Image] = ()) -> None:
        """Show the whole answer as final. Retries rate-limited and failed edits; a message that
        keeps refusing is left and the rest goes to a new one, so the final text always lands.
        AnswerStopped when the person stopped the answer (now or before)."""
        await self._stop_flusher()
        refused = 0
        for attempt in range(FINAL_ATTEMPTS):
            if self.stopped:
                raise AnswerStopped("the answer was stopped in the chat")
            try:
                await self._push(final=True, images=images)
                return
            except AnswerStopped:
                self.stopped = True
                raise
            except PlatformRateLimited as exc:
                if attempt == FINAL_ATTEMPTS - 1:
                    raise
                await self._rate_limited(exc)
            except PlatformError:
                refused += 1
                if attempt == FINAL_ATTEMPTS - 1:
                    raise
                if refused >= 2:
                    # Twice refused: the message may be gone or too old to edit.
                    await self._move_on()
                    refused = 0

    async def fail(self, message: str) -> None:
        """Keep what was shown (bringing it up to date first), and say what happened; nothing
        once the person stopped the answer."""
        await self._stop_flusher()
        if self.stopped:
            return
        if self._reply is None:  # the first message could not even be opened
            await self._platform.post_text(self._place, message)
            return
        try:
            if self.text and self._reply is not None:
                await self._push(final=False)
        except PlatformError:
            log.warning("could not bring a failed answer up to date in %s", self._place.key)
        await self._reply.fail(message)
