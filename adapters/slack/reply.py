"""One streamed answer in Slack (the seam's Reply): the loading status, the answer's messages
(`Parts`), and what Slack's refusals mean for the answer: the person pressed stop, or the bot cannot
post here and a /grok answer goes through the command's response_url (`Relay`) instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator, Sequence

from adapters.slack.messages import SlackMessages
from adapters.slack.mrkdwn import markdown_to_mrkdwn, truncate
from adapters.slack.native import task_chunk
from adapters.slack.parts import FALLBACK_CHARS, Parts
from adapters.slack.refusals import NotAMember, StoppedByUser
from adapters.slack.urls import Relay
from bot.errors import PlatformError
from bot.platform import Activity, Image, SourceLink

log = logging.getLogger(__name__)

STATUS_EVERY_S = 3.0
PLACEHOLDER_EVERY_S = 10.0
STATUS_CHARS = 100  # of the thread's status line (Slack publishes no limit)
NO_UPLOADS = "I cannot upload images to a conversation I am not in; invite me with `/invite @Grok`."


def status_line(text: str) -> str:
    """A status as the thread's one-line status: its first line, and the latest line of Grok's
    reasoning after it where the status quotes one ("💭 Thinking… 6 s · weighing…")."""
    first, _, rest = text.strip().partition("\n")
    quoted = rest.strip().removeprefix(">").strip()
    line = f"{first} · {quoted}" if quoted else first
    return line if len(line) <= STATUS_CHARS else line[: STATUS_CHARS - 1] + "…"


def status_placeholder(text: str) -> str:
    """A status as a placeholder message (outside threads): its first line in italics, then the
    quoted line of reasoning, if any, as it is."""
    first, _, rest = text.strip().partition("\n")
    return f"_{first}_" + (f"\n{rest.strip()}" if rest.strip() else "")


class SlackReply:
    def __init__(self, messages: SlackMessages, parts: Parts, *, relay: Relay | None = None) -> None:
        self._api = messages
        self._parts = parts
        # A /grok command's response_url: where the answer goes if the bot cannot post here.
        self._relay = relay
        self._relaying = False
        self._lock = asyncio.Lock()
        self._status = ""
        self._status_at = float("-inf")
        self._later: asyncio.Task[None] | None = None  # the latest status, once Slack's interval allows
        self._waiting = ""
        self._done = False
        # A tool call began that this reply cannot show as a task card: the status line that says
        # so goes at once instead of waiting for the status interval (Slack's own limits still hold).
        self._activity_due = False

    @property
    def message_id(self) -> str:
        return self._parts.first_ts

    def open_message(self) -> tuple[str, str]:
        """The message being written now, and its ts again as the stream's id while it streams."""
        part = self._parts.current
        return part.ts, part.ts if part.streaming else ""

    # -- the seam ----------------------------------------------------------------------------

    async def status(self, text: str) -> None:
        """Slack's loading status in the thread (at most one every STATUS_EVERY_S: a newer one
        waits for its turn, so what Grok is searching shows); outside threads a placeholder. A search
        this reply cannot show as a task card goes at once (`_activity_due`)."""
        line = status_line(text)
        async with self._lock:
            self._waiting = ""
            if self._done or self._relaying or self._parts.current.shown or line == self._status:
                return
            now = time.monotonic()
            due, self._activity_due = self._activity_due, False
            if self._parts.thread_ts:
                wait = self._status_at + STATUS_EVERY_S - now
                if wait > 0 and self._status and not due:
                    self._status_later(line, wait)
                    return
                if await self._api.set_status(self._parts.place, self._parts.thread_ts, line):
                    self._status, self._status_at = line, now
            elif not self._parts.current.ts or now - self._status_at >= PLACEHOLDER_EVERY_S or due:
                with self._refusals():
                    await self._parts.placeholder(status_placeholder(text))
                    self._status, self._status_at = line, now

    def _status_later(self, line: str, wait: float) -> None:
        self._waiting = line
        if self._later is None or self._later.done():
            self._later = asyncio.create_task(self._status_after(wait))

    async def _status_after(self, wait: float) -> None:
        """The newest waiting status once the interval allows, and any newer one that came meanwhile."""
        while self._waiting:
            await asyncio.sleep(wait)
            if self._waiting:
                await self.status(self._waiting)
            wait = self._status_at + STATUS_EVERY_S - time.monotonic()

    async def activity(self, activity: Activity) -> bool:
        """A task card in the answer's native stream (ShowsActivities); False where the answer
        is posted and edited instead, so that the status line says what is being searched."""
        async with self._lock:
            if self._done or self._relaying:
                return False
            with self._refusals():
                if await self._parts.task(task_chunk(activity)):
                    return True
            self._activity_due = activity.status == "in_progress"  # the status line says it now
            return False

    async def sources(self, sources: Sequence[SourceLink]) -> None:
        """The answer's sources, as a context block of links under its text (ShowsSources)."""
        self._parts.sources = tuple(sources)

    async def reasoning(self, text: str) -> None:
        """The reasoning summary, behind a button under the answer (KeepsReasoning)."""
        self._parts.reasoning = text

    async def update(self, text: str) -> None:
        async with self._lock:
            if self._done or self._relaying:
                return  # ended: nothing more is shown; relaying: the answer goes out whole, at the end
            with self._refusals():
                await self._parts.show(text)

    async def finish(self, text: str, *, images: Sequence[Image] = ()) -> None:
        if self._later is not None:
            self._later.cancel()
        async with self._lock:
            if self._done:
                return
            if not self._relaying:
                with self._refusals():
                    await self._parts.finish(text, images=images)
            if self._relaying:
                await self._relay_answer(text, images=images)
            self._done = True

    async def fail(self, message: str) -> None:
        if self._later is not None:
            self._later.cancel()
        async with self._lock:
            if self._done:
                return
            self._done = True
            notice = f"⚠️ {message}"
            if self._relay is not None and self._relaying:
                await self._relay.ephemeral(notice)
                return
            try:
                await self._parts.fail(notice)
            except StoppedByUser:
                self._parts.stopped()  # stopped: the person needs no notice

    # -- refusals -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _refusals(self) -> Iterator[None]:
        """What Slack's refusal of a post or edit means for this answer: StoppedByUser (an
        AnswerStopped) ends it when the person pressed stop; when the first post is refused because
        the bot cannot post here, the answer goes through the command's response_url from now on
        (where there is one). Any other refusal is raised."""
        try:
            yield
        except StoppedByUser:
            self._done = True
            self._parts.stopped()
            raise
        except NotAMember as exc:
            if self._relay is None or self._parts.first_ts:
                raise
            log.info(
                "cannot post in %s (%s): answering through the command's response_url",
                self._parts.place.channel,
                exc.error,
            )
            self._relaying = True

    async def _relay_answer(self, text: str, *, images: Sequence[Image]) -> None:
        """The whole answer as one in-channel response to the /grok command (no edits: a
        response_url takes five posts in all)."""
        if images:
            raise PlatformError(
                "I cannot upload images to a conversation I am not a member of", user_text=NO_UPLOADS
            )
        if not text.strip() or self._relay is None:
            return
        parts = self._parts
        found = self._api.final_blocks(text, feedback=False, sources=parts.sources, reasoning=parts.reasoning)
        blocks = [block.to_dict() for block in found]
        payload = {
            "response_type": "in_channel",
            "text": truncate(markdown_to_mrkdwn(text), FALLBACK_CHARS),
            "blocks": blocks,
        }
        if not await self._relay.send(payload):
            raise PlatformError(
                "Slack did not take the answer through the command's response URL",
                user_text="Slack did not take my answer in this conversation; please try again.",
            )
