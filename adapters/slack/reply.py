"""One streamed answer in Slack (the seam's Reply).

Native streaming where Slack allows it (a thread, and the recipient known outside DMs):
chat.startStream on the first text, chat.appendStream with each new piece, chat.stopStream with the
feedback buttons. Elsewhere, and whenever a stream fails or expires: chat.postMessage then chat.update
with the whole text so far. Text goes out as standard Markdown (markdown_text, markdown blocks).
When Slack says msg_too_long, what was shown stays and the rest continues in a new thread message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from slack_sdk.models.blocks import Block

from adapters.slack.api import SlackRefused
from adapters.slack.mrkdwn import markdown_to_mrkdwn, truncate
from bot.errors import AnswerStopped, PlatformError
from bot.platform import Image, Place
from bot.streaming import cut_point

if TYPE_CHECKING:
    from adapters.slack.platform import SlackPlatform

log = logging.getLogger(__name__)

IN_PROGRESS = " ▍"  # shown after the text while an edited (not natively streamed) answer grows
FALLBACK_CHARS = 3_000  # the `text` fallback beside blocks: notifications only, well below msg_too_long
STATUS_EVERY_S = 3.0
PLACEHOLDER_EVERY_S = 10.0
MIN_PIECE = 500
# The stream can no longer be appended to: continue it with chat.update.
STREAM_GONE = frozenset({"message_not_in_streaming_state", "message_not_found", "cant_update_message"})
# This stream cannot start here; answer with postMessage + chat.update instead.
NO_STREAM = frozenset(
    {
        "missing_recipient_user_id", "missing_recipient_team_id", "channel_type_not_supported",
        "invalid_arguments", "not_allowed_token_type", "unknown_method", "method_deprecated",
        "messages_tab_disabled", "restricted_action_non_threadable_channel", "user_not_found",
        "feature_not_enabled", "team_not_found", "invalid_chunks",
    }
)  # fmt: skip
NO_STREAM_ANYWHERE = frozenset({"unknown_method", "method_deprecated", "not_allowed_token_type"})
# The person pressed the stream's stop button: Slack takes no more of this answer.
STOPPED = "stopped_by_user"
# The bot cannot post in this conversation (a DM between two people, a group DM, a private channel
# it is not in): a /grok answer goes through the command's response_url instead.
NOT_A_MEMBER = frozenset({"not_in_channel", "channel_not_found"})
# The final message's blocks (markdown block, feedback buttons) were refused: send plain markdown_text.
BLOCKS_REFUSED = frozenset({"invalid_blocks", "invalid_blocks_format", "msg_blocks_too_long"})


@dataclass
class _Part:
    """One Slack message of the answer: it shows text[start:start + len(shown)]."""

    start: int
    ts: str = ""
    shown: str = ""
    streaming: bool = False
    placeholder: bool = False


class SlackReply:
    def __init__(
        self,
        platform: SlackPlatform,
        place: Place,
        *,
        thread_ts: str,
        recipient: str,
        recipient_team: str,
        relay_url: str = "",
    ) -> None:
        self._platform = platform
        # A /grok command's response_url: where the answer goes if the bot cannot post here.
        self._relay_url = relay_url
        self._relaying = False
        self._api = platform.messages
        self._place = place
        self._thread_ts = thread_ts
        self._recipient = recipient
        self._recipient_team = recipient_team
        is_dm = place.channel.startswith("D")
        self._native = platform.messages.native_streaming and bool(thread_ts) and (is_dm or bool(recipient))
        self._parts = [_Part(0)]
        self._lock = asyncio.Lock()
        self._status = ""
        self._status_at = float("-inf")
        self._done = False

    @property
    def message_id(self) -> str:
        return self._parts[0].ts

    @property
    def native(self) -> bool:
        return self._native

    @property
    def _part(self) -> _Part:
        return self._parts[-1]

    # -- the seam ----------------------------------------------------------------------------

    async def status(self, text: str) -> None:
        """Slack's loading status in the thread; outside threads a placeholder message."""
        line = text.strip().split("\n", 1)[0][:100]
        async with self._lock:
            if self._done or self._relaying or self._part.shown or line == self._status:
                return
            now = time.monotonic()
            if self._thread_ts:
                if now - self._status_at < STATUS_EVERY_S and self._status:
                    return
                if await self._api.set_status(self._place, self._thread_ts, line):
                    self._status, self._status_at = line, now
            elif not self._part.ts or now - self._status_at >= PLACEHOLDER_EVERY_S:
                try:
                    await self._placeholder(f"_{line}_")
                except SlackRefused as exc:
                    self._refused(exc)
                    return
                self._status, self._status_at = line, now

    async def update(self, text: str) -> None:
        async with self._lock:
            if self._done:
                raise PlatformError("this answer is already finished")
            if self._relaying:
                return  # the answer goes out whole, at the end
            try:
                await self._show(text)
            except SlackRefused as exc:
                self._refused(exc)

    async def finish(self, text: str, *, images: Sequence[Image] = ()) -> None:
        async with self._lock:
            if not self._done:
                if not self._relaying:
                    try:
                        await self._finish(text, images=images)
                    except SlackRefused as exc:
                        self._refused(exc)
                if self._relaying:
                    await self._relay(text, images=images)
                self._done = True

    async def fail(self, message: str) -> None:
        async with self._lock:
            if self._done:
                return
            self._done = True
            notice = f"⚠️ {message}"
            if self._relaying:
                await self._platform.respond(self._relay_url, {"response_type": "ephemeral", "text": notice})
                return
            try:
                await self._fail(notice)
            except SlackRefused as exc:
                if exc.error != STOPPED:  # stopped: the person needs no notice
                    raise

    def _refused(self, exc: SlackRefused) -> None:
        """What Slack's refusal of a post or edit means for this answer: AnswerStopped when the
        person stopped the stream; answering through the command's response_url from now on when
        the first post was refused because the bot cannot post here (and there is a
        response_url); otherwise the refusal is raised."""
        if exc.error == STOPPED:
            self._done = True
            part = self._part
            if part.streaming:
                part.streaming = False
                self._api.stream_closed(self._place, part.ts)
            raise AnswerStopped("the answer was stopped in Slack") from None
        if exc.error in NOT_A_MEMBER and self._relay_url and not self._parts[0].ts:
            log.info(
                "cannot post in %s (%s): answering through the command's response_url",
                self._place.channel,
                exc.error,
            )
            self._relaying = True
            return
        raise exc

    async def _relay(self, text: str, *, images: Sequence[Image]) -> None:
        """The whole answer as one in-channel response to the /grok command (no edits: a
        response_url takes five posts in all)."""
        if images:
            raise PlatformError("I cannot upload images to a conversation I am not a member of")
        if not text.strip():
            return
        blocks = [block.to_dict() for block in self._api.final_blocks(text, feedback=False)]
        payload = {
            "response_type": "in_channel",
            "text": truncate(markdown_to_mrkdwn(text), FALLBACK_CHARS),
            "blocks": blocks,
        }
        if not await self._platform.respond(self._relay_url, payload):
            raise PlatformError("Slack did not take the answer through the command's response URL")

    # -- showing text ------------------------------------------------------------------------

    async def _show(self, text: str) -> None:
        """Bring the current message up to `text` (in progress), continuing past msg_too_long."""
        for _ in range(64):
            part = self._part
            want = text[part.start :]
            try:
                await self._show_part(part, want)
                return
            except SlackRefused as exc:
                if exc.error != "msg_too_long":
                    raise
                await self._overflow(part, want)
        raise PlatformError("the answer could not be split into Slack messages")

    async def _show_part(self, part: _Part, want: str) -> None:
        api = self._api
        if not part.ts:
            if self._native and api.may_stream(self._place):
                try:
                    part.ts = await api.start_stream(self._place, self._thread_ts, want, **self._recipients())
                    part.streaming = True
                    part.shown = want
                    self._remember(part)
                    return
                except SlackRefused as exc:
                    if exc.error not in NO_STREAM:
                        raise
                    self._stop_streaming(exc.error)
            part.ts = await api.post_markdown(self._place, self._thread_ts, want + IN_PROGRESS)
            part.shown = want
            self._remember(part)
            return
        if part.streaming:
            if want.startswith(part.shown):
                delta = want[len(part.shown) :]
                if not delta:
                    return
                try:
                    await api.append_stream(self._place, part.ts, delta)
                    part.shown = want
                    return
                except SlackRefused as exc:
                    if exc.error not in STREAM_GONE:
                        raise
                    log.info("stream %s ended server-side; continuing with chat.update", part.ts)
                    self._ended(part)
            else:
                await self._end_stream(part)
        if want != part.shown or part.placeholder:
            await api.update_markdown(self._place, part.ts, want + IN_PROGRESS)
            part.shown, part.placeholder = want, False

    async def _overflow(self, part: _Part, want: str) -> None:
        """Slack refused the message as too long: keep what it shows, continue in a new one."""
        if part.ts and part.shown and not part.placeholder:
            await self._close_part(part)
            self._parts.append(_Part(part.start + len(part.shown)))
            return
        # Even the first piece is too long for Slack: show a shorter one and go on from there.
        cut = cut_point(want, max(MIN_PIECE, len(want) // 2))
        if cut >= len(want):
            raise PlatformError("Slack refused even a short message as too long")
        if part.ts:
            await self._api.update_markdown(self._place, part.ts, want[:cut])
        else:
            part.ts = await self._api.post_markdown(self._place, self._thread_ts, want[:cut])
            self._remember(part)
        part.shown, part.placeholder = want[:cut], False
        self._parts.append(_Part(part.start + cut))

    async def _close_part(self, part: _Part) -> None:
        """Freeze a full message as it is, without the in-progress marker."""
        if part.streaming and await self._end_stream(part):
            return
        await self._api.update_markdown(self._place, part.ts, part.shown)

    async def _end_stream(self, part: _Part, text: str = "", *, blocks: Sequence[Block] = ()) -> bool:
        """chat.stopStream (appending `text`); False when the stream had already ended server-side."""
        try:
            try:
                await self._api.stop_stream(self._place, part.ts, text, blocks=blocks)
            except SlackRefused as exc:
                if exc.error not in BLOCKS_REFUSED or not blocks:
                    raise
                log.warning("Slack refused the feedback buttons (%s); stopping without", exc.error)
                await self._api.stop_stream(self._place, part.ts, text)
        except SlackRefused as exc:
            if exc.error not in STREAM_GONE:
                raise
            self._ended(part)
            return False
        self._ended(part, gone=False)
        return True

    def _ended(self, part: _Part, *, gone: bool = True) -> None:
        if part.streaming:
            part.streaming = False
            self._api.stream_closed(self._place, part.ts)
        if gone:
            self._native = False  # Slack ended it early: edit the rest of this answer instead

    async def _finish(self, text: str, *, images: Sequence[Image]) -> None:
        for _ in range(64):
            part = self._part
            want = text[part.start :]
            try:
                await self._finish_part(part, want, feedback=not images)
                break
            except SlackRefused as exc:
                if exc.error != "msg_too_long":
                    raise
                await self._overflow(part, want)
        else:
            raise PlatformError("the answer could not be split into Slack messages")
        if images:
            # The text (e.g. the revised prompt) is its own message above; the files follow it.
            await self._api.upload_images(
                self._place, self._thread_ts, images, comment="", http=self._platform.http
            )

    async def _finish_part(self, part: _Part, want: str, *, feedback: bool) -> None:
        api = self._api
        blocks = api.final_blocks(want, feedback=feedback)
        fallback = truncate(markdown_to_mrkdwn(want), FALLBACK_CHARS) or " "
        if part.streaming:
            if want.startswith(part.shown):
                delta = want[len(part.shown) :]
                try:
                    if delta and api.would_wait("chat.stopStream", self._place):
                        # Show the end now; the stop (Tier 2) may have to queue.
                        await api.append_stream(self._place, part.ts, delta)
                        part.shown, delta = want, ""
                except SlackRefused as exc:
                    if exc.error not in STREAM_GONE:
                        raise
                    self._ended(part)
                if part.streaming and await self._end_stream(part, delta, blocks=blocks[1:]):
                    part.shown = want
                    return
            else:
                # The final text does not continue the stream: close it, then replace its text.
                await self._end_stream(part)
        if not want.strip():
            if part.ts and part.placeholder:
                await api.delete(self._place, part.ts)
            return
        try:
            if part.ts:
                await api.update_blocks(self._place, part.ts, blocks, fallback)
            else:
                part.ts = await api.post_blocks(self._place, self._thread_ts, blocks, fallback)
        except SlackRefused as exc:
            if exc.error not in BLOCKS_REFUSED:
                raise
            log.warning("Slack refused the answer's blocks (%s); sending plain markdown", exc.error)
            if part.ts:
                await api.update_markdown(self._place, part.ts, want)
            else:
                part.ts = await api.post_markdown(self._place, self._thread_ts, want)
        self._remember(part)
        part.shown, part.placeholder = want, False

    async def _fail(self, notice: str) -> None:
        part = self._part
        api = self._api
        try:
            if part.streaming and await self._end_stream(part, "\n\n" + notice):
                return
            if part.ts:
                shown = "" if part.placeholder else part.shown
                await api.update_markdown(self._place, part.ts, f"{shown}\n\n{notice}".strip())
                return
        except SlackRefused as exc:
            if exc.error != "msg_too_long":
                raise
            if part.streaming:
                await self._end_stream(part)
        # Nothing shown yet, or no room left: say it in the thread (this also clears the status).
        await api.post_markdown(self._place, self._thread_ts, notice)

    # -- helpers -----------------------------------------------------------------------------

    async def _placeholder(self, text: str) -> None:
        part = self._part
        if part.ts:
            await self._api.update_markdown(self._place, part.ts, text)
        else:
            part.ts = await self._api.post_markdown(self._place, self._thread_ts, text)
            part.placeholder = True
            self._remember(part)

    def _recipients(self) -> dict[str, str]:
        if not self._recipient:
            return {}  # a DM: Slack knows who is answered
        return {"recipient": self._recipient, "recipient_team": self._recipient_team}

    def _remember(self, part: _Part) -> None:
        self._platform.remember_recipient(self._place.channel, part.ts, self._recipient, self._recipient_team)

    def _stop_streaming(self, error: str) -> None:
        self._native = False
        if error in NO_STREAM_ANYWHERE:
            log.warning("Slack refused native streaming (%s); using chat.update from now on", error)
            self._api.native_streaming = False
