"""Streams one answer into a chat: asks the layout what each message shows, and owns the timing
(paced interim edits, the scope's edit budget, 429s, moving on from a blocked message, and a final
text that always lands).

Calls wait for the scope's budget by what they do (bot/streaming/budgets.py's Turn): a final goes
before first words, which go before interim edits. An interim edit still waiting when the stream
ends is dropped, so an answer whose stream ended before its first message could be posted goes out
whole in one call. Text is read once the budget allows the call, never before: what goes out is
everything that arrived while the call waited.
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
    KeepsReasoning,
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
from bot.streaming.budgets import EditBudget, EditBudgets, Turn
from bot.streaming.layout import Layout, Part
from bot.streaming.pacing import Pacer

log = logging.getLogger(__name__)

FINAL_ATTEMPTS = 6
# A message that cannot be edited for longer than this (a stalled bucket, an expired interaction
# token) is left as shown and the answer goes on in a new message, instead of hanging. A message
# that shows none of the answer yet is never left behind for a rate limit (that would leave a
# notice and a fragment): it waits out Retry-After, up to BLOCKED_CLOSE_S.
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
        self._budgets = budgets
        self._paces_finals = caps.scope_paces_finals
        self._budget = budgets.for_place(platform, place)  # edits (and posts where not apart)
        self._waiting_budget = False  # the flusher waits for budget (it may be dropped then)
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
        self._native_activities = False  # the reply shows them itself (task cards): not as status
        self._sources: tuple[SourceLink, ...] = ()
        self._reasoning = ""  # the reasoning summary, for a reply that keeps it viewable
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
            current = None if self._native_activities else self._activities.current()
            line = current.title if current is not None else text
            if not line:
                return
            try:
                await reply.status(line)
            except AnswerStopped:
                self.stopped = True

    async def activity(self, activity: Activity) -> None:
        """A tool call began, changed or ended: shown by a reply that shows activities itself
        (where it can), else as the status line (the latest one in progress) until the answer's
        text starts."""
        self._activities.update(activity)
        reply = self._replies[-1] if self._replies else None
        shown = False
        if isinstance(reply, ShowsActivities):
            try:
                shown = await reply.activity(activity)
            except AnswerStopped:
                self.stopped = True
                return
            except PlatformError as exc:  # what Grok does is shown as a courtesy: the answer goes on
                log.info("an activity could not be shown in %s: %s", self._place.key, type(exc).__name__)
        self._native_activities = self._native_activities or shown
        if not self._native_activities:
            await self.status(self._status)

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

    def _budget_now(self) -> EditBudget:
        """The budget the current message's next call draws from: posting its first words, or
        editing it."""
        posting = bool(self._replies) and not self._replies[-1].message_id
        return self._budgets.for_place(self._platform, self._place, posting=posting)

    async def _take(self, turn: Turn) -> None:
        """Wait for the scope's budget; finals skip it where the platform paces them itself."""
        if turn is Turn.FINAL and not self._paces_finals:
            return
        budget = self._budget_now()
        if turn is Turn.INTERIM and not (self._replies and self._replies[-1].message_id):
            turn = Turn.FIRST
        in_flusher = asyncio.current_task() is self._flusher
        self._waiting_budget = in_flusher
        try:
            await budget.acquire(turn)
        finally:
            if in_flusher:
                self._waiting_budget = False

    async def _push(self, *, final: bool, images: Sequence[Image] = ()) -> None:
        """Show everything received: finish full messages, then edit (or finish) the current one."""
        while (part := self._layout.overflow()) is not None:
            await self._seal(part, final=final)
        if (self._layout.final() if final else self._layout.interim()) is None:
            return
        await self._take(Turn.FINAL if final else Turn.INTERIM)
        if not final:
            if self._before_edit is not None:  # the edit goes now: take what the source holds
                self._before_edit()
                await asyncio.sleep(0)
            if (part := self._layout.overflow()) is not None:  # grew past the message while waiting
                await self._seal(part, final=False, paid=True)
                return
        body = self._layout.final() if final else self._layout.interim()
        if body is None:
            return
        if final:
            reply = self._replies[-1]
            if self._sources and isinstance(reply, ShowsSources):
                await reply.sources(self._sources)
            if self._reasoning and isinstance(reply, KeepsReasoning):
                await reply.reasoning(self._reasoning)
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

    async def _seal(self, part: Part, *, final: bool, paid: bool = False) -> None:
        """Finish the current message with `part`, and open the next one replying to it."""
        if not paid:
            await self._take(Turn.FINAL if final else Turn.INTERIM)
        await self._replies[-1].finish(part.body)
        self._layout.sealed(part)
        await self._open_next(reply_to=self._replies[-1].message_id)

    async def _open_next(self, *, reply_to: str) -> None:
        self._replies.append(await self._platform.start_reply(self._place, reply_to=reply_to))
        self._pacer.new_message()
        self._tell_message()

    async def _rate_limited(self, exc: PlatformRateLimited) -> None:
        """Slow the scope; when this message stays blocked for long, go on in a new one, unless it
        shows none of the answer yet: then the answer waits, and stays one continuous answer."""
        budget = self._budget_now()
        blank = not self._layout.shown_here
        if exc.retry_after <= LONG_STALL_S or (blank and exc.retry_after <= BLOCKED_CLOSE_S):
            budget.slow_down(exc.retry_after)
            if not self._paces_finals and asyncio.current_task() is not self._flusher:
                await asyncio.sleep(exc.retry_after)  # a final skips the scope's budget: wait here
            return
        # The block is this message's (a stalled bucket, an expired token): slow the scope a
        # little, and let the platform's own limiter pace the new message.
        budget.slow_down(1.0)
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
                if self._paces_finals:
                    await self._budget.acquire(Turn.FINAL)
                if shown:
                    await reply.finish(shown)
                else:  # only a status or placeholder was shown: say where the answer went
                    await reply.fail("The answer continues in the next message.")
        except (PlatformError, TimeoutError):
            log.info("a blocked message in %s keeps its in-progress marker", self._place.key)

    async def _stop_flusher(self) -> None:
        """Stop the flusher; an interim edit still waiting for budget is dropped (the final shows
        all of it, and goes before the other answers' interim edits)."""
        self._pacer.close()
        if self._flusher is not None:
            flusher = self._flusher
            if self._waiting_budget:
                flusher.cancel()
            await asyncio.wait({flusher})
            if not flusher.cancelled() and (exc := flusher.exception()) is not None:
                raise exc

    async def finish(
        self,
        *,
        images: Sequence[Image] = (),
        sources: Sequence[SourceLink] = (),
        appendix: str = "",
        reasoning: str = "",
    ) -> None:
        """Show the whole answer as final, followed by `appendix` (Markdown: the code Grok ran)
        and its `sources` (by the reply where it shows them itself, else as a numbered list);
        `reasoning` (a summary) is offered collapsed by a reply that keeps it (KeepsReasoning).
        Retries rate-limited and failed edits; a message that keeps refusing is left and the rest
        goes to a new one, so the final text always lands. AnswerStopped when the person stopped
        the answer (now or before)."""
        await self._stop_flusher()
        self._sources = tuple(sources)
        self._reasoning = reasoning
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
