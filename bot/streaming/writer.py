"""Streams one answer into a chat: asks the layout what each message shows, and owns the timing
(paced interim edits, the scope's edit budget, 429s, moving on from a blocked message, and a final
text that always lands).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from bot.errors import AnswerStopped, PlatformError, PlatformRateLimited
from bot.platform import (
    Activity,
    Image,
    Place,
    Platform,
    Reply,
    ShowsActivities,
    ShowsSources,
    SourceLink,
    TellsOpenMessage,
)
from bot.streaming.activities import Activities
from bot.streaming.appendix import sources_markdown
from bot.streaming.budgets import EditBudgets
from bot.streaming.layout import Layout, Part
from bot.streaming.pacing import Pacer

log = logging.getLogger(__name__)

FINAL_ATTEMPTS = 6
# A message that cannot be edited for longer than this (a stalled bucket, an expired interaction
# token) is left as shown and the answer goes on in a new message, instead of hanging.
LONG_STALL_S = 5.0
BLOCKED_CLOSE_S = 120.0  # how long a left-behind message may take to accept its final edit


class StreamWriter:
    """Streams one answer into `place`. `append` never blocks; a flusher task edits in the background.

    Within the current message, each edit shows everything that has arrived (merged), no sooner than
    `interval` after the previous edit of that message, and only with budget from the scope.
    `before_edit` is called just before each interim edit, so that what a source holds back is
    appended first (the source's task runs during one yield): Gathering.flush for a Grok stream.
    `on_message` is told, after each edit, which message is written now and through which native
    stream (bot.inflight records it, to close the answer should the process die).
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
        before_edit: Callable[[], None] | None = None,
        on_message: Callable[[str, str], None] | None = None,
    ) -> None:
        caps = platform.capabilities
        self._platform = platform
        self._place = place
        self._reply_to = reply_to
        self._budget = budgets.for_place(platform, place)
        self._before_edit = before_edit
        self._on_message = on_message  # told (message id, stream id) after each message change
        self._layout = Layout(caps.max_message_length)
        self._pacer = Pacer(
            caps.edit_interval if interval is None else interval, clock, looks=before_edit is not None
        )
        self._replies: list[Reply] = []  # every message of the answer; the last one is being written
        self._flusher: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()  # left-behind messages being closed
        self._status = ""  # the last status asked for (thinking, writing)
        self._activities = Activities()  # Grok's tool calls, shown in the status line
        self._sources: tuple[SourceLink, ...] = ()
        self.stopped = False  # the person stopped the answer in the chat (AnswerStopped)

    @property
    def text(self) -> str:
        return self._layout.text

    @property
    def shown_text(self) -> str:
        """The part of the answer (without the prefix) that the chat has shown."""
        return self._layout.shown_text

    @property
    def message_ids(self) -> list[str]:
        return [r.message_id for r in self._replies if r.message_id]

    async def open(self) -> None:
        """Create the first message and start the flusher."""
        await self._open_next(reply_to=self._reply_to)
        self._flusher = asyncio.create_task(self._flush_loop(), name=f"stream:{self._place.key}")

    async def status(self, text: str) -> None:
        """A transient status before any text (e.g. thinking for N s); an activity in progress
        is shown instead where the reply has no way of its own to show activities. A platform may
        report here that the person stopped the answer (the console's Ctrl-C while the model thinks)."""
        self._status = text
        if self._replies and not self._layout.started:
            reply = self._replies[-1]
            current = None if isinstance(reply, ShowsActivities) else self._activities.current()
            line = current.title if current is not None else text
            if not line:
                return
            try:
                await reply.status(line)
            except AnswerStopped:
                self.stopped = True

    async def activity(self, activity: Activity) -> None:
        """A tool call began, changed or ended: shown by a reply that shows activities itself,
        else as the status line (the latest one in progress) until the answer's text starts."""
        self._activities.update(activity)
        reply = self._replies[-1] if self._replies else None
        if not isinstance(reply, ShowsActivities):
            await self.status(self._status)
            return
        try:
            await reply.activity(activity)
        except AnswerStopped:
            self.stopped = True
        except PlatformError as exc:  # what Grok does is shown as a courtesy: the answer goes on
            log.info("an activity could not be shown in %s: %s", self._place.key, type(exc).__name__)

    def set_prefix(self, prefix: str) -> None:
        """Text shown before the answer; only settable before the first delta."""
        self._layout.set_prefix(prefix)

    def append(self, delta: str) -> None:
        if delta:
            self._layout.append(delta)
            self._pacer.nudge()

    async def _flush_loop(self) -> None:
        while await self._pacer.turn():
            if self._before_edit is not None:
                self._before_edit()
                await asyncio.sleep(0)
                if self._pacer.closed:
                    return
            try:
                await self._push(final=False)
            except AnswerStopped:
                self.stopped = True
                self._pacer.close()
                return
            except PlatformRateLimited as exc:
                await self._rate_limited(exc)
                self._pacer.nudge()
            except PlatformError as exc:
                # An interim edit that fails is not fatal: the final edit retries with all text.
                log.warning("interim edit failed in %s: %s", self._place.key, type(exc).__name__)

    async def _push(self, *, final: bool, images: Sequence[Image] = ()) -> None:
        """Show everything received: finish full messages, then edit (or finish) the current one."""
        while (part := self._layout.overflow()) is not None:
            await self._seal(part)
        body = self._layout.final() if final else self._layout.interim()
        if body is None:
            return
        await self._budget.acquire()
        if final:
            reply = self._replies[-1]
            if self._sources and isinstance(reply, ShowsSources):
                await reply.sources(self._sources)
            await reply.finish(body, images=images)
        else:
            await self._replies[-1].update(body)
        self._layout.showed(body)
        self._pacer.edited()
        self._tell_message()

    def _tell_message(self) -> None:
        if self._on_message is None or not self._replies:
            return
        reply = self._replies[-1]
        if isinstance(reply, TellsOpenMessage):
            self._on_message(*reply.open_message())
        else:
            self._on_message(reply.message_id, "")

    async def _seal(self, part: Part) -> None:
        """Finish the current message with `part`, and open the next one replying to it."""
        await self._budget.acquire()
        await self._replies[-1].finish(part.body)
        self._layout.sealed(part)
        await self._open_next(reply_to=self._replies[-1].message_id)

    async def _open_next(self, *, reply_to: str) -> None:
        self._replies.append(await self._platform.start_reply(self._place, reply_to=reply_to))
        self._pacer.new_message()
        self._tell_message()

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
        blocked = self._replies[-1]
        shown = self._layout.leave()
        log.info("a message in %s is blocked; continuing in a new one", self._place.key)
        await self._open_next(reply_to=blocked.message_id)
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
        self._pacer.close()
        if self._flusher is not None:
            await self._flusher

    async def finish(
        self, *, images: Sequence[Image] = (), sources: Sequence[SourceLink] = (), appendix: str = ""
    ) -> None:
        """Show the whole answer as final, followed by `appendix` (Markdown: the code Grok ran)
        and its `sources` (by the reply where it shows them itself, else as a numbered list).
        Retries rate-limited and failed edits; a message that keeps refusing is left and the rest
        goes to a new one, so the final text always lands. AnswerStopped when the person stopped
        the answer (now or before)."""
        await self._stop_flusher()
        self._sources = tuple(sources)
        native = bool(self._replies) and isinstance(self._replies[-1], ShowsSources)
        listed = sources_markdown(self._sources) if self._sources and not native else ""
        self._layout.set_suffix(appendix + (f"\n\n{listed}" if listed else ""))
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
            except PlatformError as exc:
                if attempt == FINAL_ATTEMPTS - 1:
                    raise
                refused = await self._final_refused(exc, refused)

    async def _final_refused(self, exc: PlatformError, refused: int) -> int:
        """Get past a refused final edit; how many plain refusals in a row there have been now."""
        if isinstance(exc, PlatformRateLimited):
            await self._rate_limited(exc)
            return refused
        if refused + 1 < 2:
            return refused + 1
        await self._move_on()  # twice refused: the message may be gone or too old to edit
        return 0

    async def fail(self, message: str) -> None:
        """Keep what was shown (bringing it up to date first), and say what happened; nothing
        once the person stopped the answer."""
        await self._stop_flusher()
        if self.stopped:
            return
        if not self._replies:  # the first message could not even be opened
            await self._platform.post_text(self._place, message)
            return
        try:
            if self.text:
                await self._push(final=False)
        except PlatformError:
            log.warning("could not bring a failed answer up to date in %s", self._place.key)
        await self._replies[-1].fail(message)
