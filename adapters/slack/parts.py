"""The Slack messages one answer is shown in: a native stream where Slack allows it (a thread, the
recipient known outside DMs, streams offered and budget left), else chat.postMessage then chat.update
with the whole text so far; a stream that ends early is continued with chat.update, and past
msg_too_long what was shown stays and the rest continues in a new thread message.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial

from slack_sdk.models.blocks import Block
from slack_sdk.models.messages.chunk import Chunk

from adapters.slack.messages import SlackMessages
from adapters.slack.mrkdwn import markdown_to_mrkdwn, truncate
from adapters.slack.people import Recipients
from adapters.slack.refusals import (
    BlocksRefused,
    MessageTooLong,
    StreamGone,
    StreamNotHere,
    StreamsUnavailable,
)
from adapters.slack.streams import Streams
from bot.errors import PlatformError
from bot.platform import Image, Place, SourceLink
from bot.streaming import cut_point, sources_markdown

log = logging.getLogger(__name__)

IN_PROGRESS = " ▍"  # shown after the text while an edited (not natively streamed) answer grows
FALLBACK_CHARS = 3_000  # the `text` fallback beside blocks: notifications only, well below msg_too_long
MIN_PIECE = 500
MAX_PARTS = 64
TOO_LONG = "Slack refused this answer as too long for its messages."


@dataclass
class Part:
    """One Slack message of the answer: it shows text[start:start + len(shown)]."""

    start: int
    ts: str = ""
    shown: str = ""
    streaming: bool = False
    placeholder: bool = False


class Parts:
    def __init__(
        self,
        messages: SlackMessages,
        streams: Streams,
        recipients: Recipients,
        place: Place,
        *,
        thread_ts: str,
        recipient: str,
        recipient_team: str,
    ) -> None:
        self.place = place
        self.thread_ts = thread_ts
        self._api = messages
        self._streams = streams
        self._recipients = recipients
        self._recipient = recipient
        self._recipient_team = recipient_team
        is_dm = place.channel.startswith("D")
        self.native = streams.offered(place.workspace) and bool(thread_ts) and (is_dm or bool(recipient))
        self._parts = [Part(0)]
        # What the answer's last message ends with (ShowsSources, KeepsReasoning): set before finish.
        self.sources: tuple[SourceLink, ...] = ()
        self.reasoning = ""

    @property
    def current(self) -> Part:
        return self._parts[-1]

    @property
    def first_ts(self) -> str:
        return self._parts[0].ts

    # -- the answer as it grows ----------------------------------------------------------------

    async def placeholder(self, text: str) -> None:
        """A status line as the message itself (outside threads there is no loading status)."""
        part = self.current
        await self._markdown(part, text)
        part.placeholder = True
        self._remember(part)

    async def task(self, chunk: Chunk) -> bool:
        """A task card (what Grok is doing) in the answer's native stream, which it starts when the
        answer has no message yet; False when this answer cannot stream (no thread, streams not
        offered or out of budget, an earlier stream ended): its status line says it instead."""
        part = self.current
        if part.streaming:
            try:
                await self._api.append_stream(self.place, part.ts, "", chunks=[chunk])
            except StreamGone:
                self._ended(part)
                return False
            return True
        if part.ts or not self.native:
            return False
        return await self._start_stream(part, "", chunks=[chunk])

    async def show(self, text: str) -> None:
        """Bring the current message up to `text` (in progress), continuing past msg_too_long."""
        await self._fit(text, self._show_part)

    async def finish(self, text: str, *, images: Sequence[Image]) -> None:
        try:
            await self._fit(text, partial(self._finish_part, feedback=not images))
        finally:
            self._release_final()
        if images:
            # The text (e.g. the revised prompt) is its own message above; the files follow it.
            await self._api.upload_images(self.place, self.thread_ts, images, comment="")

    async def fail(self, notice: str) -> None:
        """Keep what was shown and add `notice` to it; in a new thread message when nothing was
        shown yet or there is no room left (which also clears the status)."""
        self._release_final()
        part = self.current
        try:
            if part.streaming and await self._end_stream(part, "\n\n" + notice):
                return
            if part.ts:
                shown = "" if part.placeholder else part.shown
                await self._api.update_markdown(self.place, part.ts, f"{shown}\n\n{notice}".strip())
                return
        except MessageTooLong:
            if part.streaming:
                await self._end_stream(part)
        await self._api.post_markdown(self.place, self.thread_ts, notice)

    def stopped(self) -> None:
        """The person stopped the answer: its stream is over."""
        self._release_final()
        self._ended(self.current, gone=False)

    def _reserve_final(self) -> None:
        """A posted (not streamed) answer will need one chat.update for its final: interim edits of
        every answer in the workspace leave room for it (Pacer.reserve)."""
        self._api.api.pacer.reserve("chat.update", self.place.workspace, self)

    def _release_final(self) -> None:
        self._api.api.pacer.release("chat.update", self.place.workspace, self)

    # -- one message ----------------------------------------------------------------------------

    async def _fit(self, text: str, write: Callable[[Part, str], Awaitable[None]]) -> None:
        """`write` the current message's share of `text`; past msg_too_long, in the next message."""
        for _ in range(MAX_PARTS):
            part = self.current
            want = text[part.start :]
            try:
                await write(part, want)
                return
            except MessageTooLong:
                await self._overflow(part, want)
        raise PlatformError("the answer could not be split into Slack messages", user_text=TOO_LONG)

    async def _show_part(self, part: Part, want: str) -> None:
        if not part.ts:
            await self._open(part, want)
            return
        if part.streaming:
            if not want.startswith(part.shown):
                await self._end_stream(part)
            elif await self._append(part, want):
                return
        changed = want != part.shown or part.placeholder
        if changed and await self._api.update_markdown(self.place, part.ts, want + IN_PROGRESS, interim=True):
            part.shown, part.placeholder = want, False

    async def _open(self, part: Part, want: str) -> None:
        """The first words of a message: a native stream where one can start, else a post."""
        if self.native and await self._start_stream(part, want):
            return
        part.ts = await self._api.post_markdown(self.place, self.thread_ts, want + IN_PROGRESS)
        part.shown = want
        self._remember(part)
        self._reserve_final()

    async def _start_stream(self, part: Part, want: str, *, chunks: Sequence[Chunk] = ()) -> bool:
        """Start `part` as a native stream showing `want` or `chunks`; False where none can start."""
        if not self._streams.may_start(self.place):
            return False
        try:
            part.ts = await self._api.start_stream(
                self.place, self.thread_ts, want, chunks=chunks, **self._recipient_of()
            )
        except StreamsUnavailable as exc:
            self._streams.withdraw(self.place.workspace, exc)
            self.native = False
            return False
        except StreamNotHere:
            self.native = False  # this conversation cannot stream: post and edit
            return False
        finally:
            self._streams.start_done(self.place)
        self._streams.opened(self.place, part.ts)
        part.streaming, part.shown = True, want
        self._remember(part)
        return True

    async def _append(self, part: Part, want: str) -> bool:
        """Append to the stream what `want` adds; False when the stream had ended server-side."""
        delta = want[len(part.shown) :]
        if delta:
            try:
                await self._api.append_stream(self.place, part.ts, delta)
            except StreamGone:
                log.info("stream %s ended server-side; continuing with chat.update", part.ts)
                self._ended(part)
                return False
            part.shown = want
        return True

    async def _overflow(self, part: Part, want: str) -> None:
        """Slack refused the message as too long: keep what it shows, continue in a new one."""
        if part.ts and part.shown and not part.placeholder:
            await self._close_part(part)
            self._parts.append(Part(part.start + len(part.shown)))
            return
        # Even the first piece is too long for Slack: show a shorter one and go on from there.
        cut = cut_point(want, max(MIN_PIECE, len(want) // 2))
        if cut >= len(want):
            raise PlatformError("Slack refused even a short message as too long", user_text=TOO_LONG)
        await self._markdown(part, want[:cut])
        self._remember(part)
        part.shown, part.placeholder = want[:cut], False
        self._parts.append(Part(part.start + cut))

    async def _close_part(self, part: Part) -> None:
        """Freeze a full message as it is, without the in-progress marker."""
        if part.streaming and await self._end_stream(part):
            return
        await self._api.update_markdown(self.place, part.ts, part.shown)

    # -- the final text -------------------------------------------------------------------------

    async def _finish_part(self, part: Part, want: str, *, feedback: bool) -> None:
        ends = self._api.end_blocks(feedback=feedback, sources=self.sources, reasoning=self.reasoning)
        blocks = self._api.final_blocks(want, feedback=False) + ends
        if part.streaming and await self._finish_stream(part, want, ends):
            return
        if not want.strip():
            if part.ts and part.placeholder:
                await self._api.delete(self.place, part.ts)
            return
        await self._final_message(part, want, blocks)
        self._remember(part)
        part.shown, part.placeholder = want, False

    async def _finish_stream(self, part: Part, want: str, ends: Sequence[Block]) -> bool:
        """Stop the stream with the rest of `want` and the blocks that end it (sources, reasoning,
        feedback); False when the final text must replace the stream's instead (it does not
        continue it, or the stream is gone)."""
        if not want.startswith(part.shown):
            # The final text does not continue the stream: close it, then replace its text.
            await self._end_stream(part)
            return False
        delta = want[len(part.shown) :]
        # Show the end now when the stop (Tier 2) would have to queue.
        if delta and self._api.would_wait("chat.stopStream", self.place) and await self._append(part, want):
            delta = ""
        if part.streaming and await self._end_stream(part, delta, blocks=ends):
            part.shown = want
            return True
        return False

    async def _final_message(self, part: Part, want: str, blocks: Sequence[Block]) -> None:
        """The final text as a markdown block with the feedback buttons; plain markdown_text where
        Slack refuses the blocks."""
        fallback = truncate(markdown_to_mrkdwn(want), FALLBACK_CHARS) or " "
        try:
            if part.ts:
                await self._api.update_blocks(self.place, part.ts, blocks, fallback)
            else:
                part.ts = await self._api.post_blocks(self.place, self.thread_ts, blocks, fallback)
        except BlocksRefused as exc:
            log.warning("Slack refused the answer's blocks (%s); sending plain markdown", exc.error)
            await self._markdown(part, want + self._listed())

    # -- streams and messages -------------------------------------------------------------------

    async def _end_stream(self, part: Part, text: str = "", *, blocks: Sequence[Block] = ()) -> bool:
        """chat.stopStream (appending `text`); False when the stream had already ended server-side."""
        try:
            try:
                await self._api.stop_stream(self.place, part.ts, text, blocks=blocks)
            except BlocksRefused as exc:
                if not blocks:
                    raise
                log.warning("Slack refused the answer's end blocks (%s); stopping without", exc.error)
                await self._api.stop_stream(self.place, part.ts, text + self._listed())
        except StreamGone:
            self._ended(part)
            return False
        self._ended(part, gone=False)
        return True

    def _ended(self, part: Part, *, gone: bool = True) -> None:
        if part.streaming:
            part.streaming = False
            self._streams.closed(self.place, part.ts)
        if gone:
            self.native = False  # Slack ended it early: edit the rest of this answer instead

    async def _markdown(self, part: Part, text: str) -> None:
        """`text` as the part's whole message: edited when it exists, else posted."""
        if part.ts:
            await self._api.update_markdown(self.place, part.ts, text)
        else:
            part.ts = await self._api.post_markdown(self.place, self.thread_ts, text)

    def _listed(self) -> str:
        """The sources as a Markdown list after the text, where Slack refused their block."""
        return f"\n\n{sources_markdown(self.sources)}" if self.sources else ""

    def _recipient_of(self) -> dict[str, str]:
        if not self._recipient:
            return {}  # a DM: Slack knows who is answered
        return {"recipient": self._recipient, "recipient_team": self._recipient_team}

    def _remember(self, part: Part) -> None:
        self._recipients.remember(self.place.channel, part.ts, self._recipient, self._recipient_team)
