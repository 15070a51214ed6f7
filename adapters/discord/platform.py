"""Discord as a `bot.platform.Platform`: the long-lived platform that jobs, digests and message events
use (where a Place's messages go, posting, direct messages, typing, uploads, downloads, channel
history), and `ChannelReply`, an answer's message in a channel, edited while it streams.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime

import discord

from adapters.discord.messages import (
    LINK_ROOM,
    MARKER,
    MAX_CONTENT,
    MAX_UPLOAD,
    NO_PINGS,
    PING_REPLIED,
    StreamedMessage,
    failure_text,
    image_files,
    upload_batches,
)
from adapters.discord.places import PLATFORM, Target
from adapters.discord.refusals import CANNOT_READ, discord_errors
from bot.errors import PlatformError
from bot.platform import Activity, Attachment, Author, Capabilities, ChannelMessage, Image, OpenMessage, Place
from bot.streaming import split_message

log = logging.getLogger(__name__)

TYPING_EVERY_S = 8.0  # typing lasts 10 s on Discord
KNOWN_THREADS = 4096  # Place.thread ids remembered as thread channel or message id

CAPABILITIES = Capabilities(
    # Room for the in-progress marker and for `<…>` around the links' URLs (no previews).
    max_message_length=MAX_CONTENT - len(MARKER) - LINK_ROOM,
    edit_interval=1.0,
    native_streaming=False,
    max_upload_bytes=MAX_UPLOAD,
    # Message edits are bucketed per channel (PATCH /channels/{id}/messages/{id} answers
    # X-RateLimit-Limit 5 per 5 s), and one report saw 429s above ~1 edit/s per channel
    # (platforms.md D3). So every stream in a channel shares 60 edits a minute with a burst of 5:
    # one answer gets its ~1 edit/s, ten simultaneous answers share it without drawing a 429.
    scope_edits_per_minute=60.0,
    scope_burst=5,
    # Sending (POST …/messages) and editing (PATCH …/messages/{id}) are separate routes with
    # buckets of their own: ten answers at once post five and edit five per 5 s.
    scope_posts_apart=True,
    scope_fixed_windows=True,
    private_files=True,  # an ephemeral command answer takes files too
)


class DiscordPlatform:
    """The long-lived Discord platform (jobs, digests, message events). Per-event wrappers build on it."""

    def __init__(self, client: discord.Client, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._clock = clock
        self._threads: OrderedDict[str, bool] = OrderedDict()  # id -> is a thread channel (bounded)
        self._typing_at: dict[int, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        return PLATFORM

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    def monotonic(self) -> float:
        return self._clock()

    def rate_scope(self, place: Place) -> str:
        # Threads share their parent's budget: simple, and never above Discord's per-channel limits.
        return f"channel:{place.channel}"

    # -- places ---------------------------------------------------------------------------------

    def note_thread(self, thread: str, *, is_thread: bool) -> None:
        """Remember whether a Place.thread is a thread channel or a message id (saves a lookup)."""
        self._threads[thread] = is_thread
        self._threads.move_to_end(thread)
        while len(self._threads) > KNOWN_THREADS:
            self._threads.popitem(last=False)

    async def _is_thread(self, thread: str) -> bool:
        known = self._threads.get(thread)
        if known is not None:
            return known
        channel = self._client.get_channel(int(thread))
        if channel is None:
            try:
                async with discord_errors("looking up a channel"):
                    channel = await self._client.fetch_channel(int(thread))
            except PlatformError as exc:
                if not isinstance(exc.__cause__, discord.NotFound):
                    raise
                channel = None  # not a channel: the id of the message that started the conversation
        is_thread = isinstance(channel, discord.Thread)
        self.note_thread(thread, is_thread=is_thread)
        return is_thread

    async def target(self, place: Place) -> Target:
        guild = None if place.workspace == "dm" else int(place.workspace)
        if place.thread.isdigit():
            if await self._is_thread(place.thread):
                return Target(int(place.thread), guild)
            return Target(int(place.channel), guild, reply_to=place.thread)
        return Target(int(place.channel), guild)  # "" or the engine's "user:<id>" sub-conversations

    def messageable(self, target: Target) -> discord.PartialMessageable:
        return self._client.get_partial_messageable(target.channel, guild_id=target.guild)

    # -- posting --------------------------------------------------------------------------------

    async def send(
        self,
        target: Target,
        *,
        content: str | None,
        reply_to: str = "",
        files: Sequence[discord.File] = (),
        ping: bool = True,
    ) -> discord.Message:
        """One message in `target`'s channel, replying to `reply_to` if given (a deleted one is no error)."""
        reference = None
        if reply_to.isdigit():
            reference = discord.MessageReference(
                message_id=int(reply_to),
                channel_id=target.channel,
                guild_id=target.guild,
                fail_if_not_exists=False,
            )
        async with discord_errors("sending a message"):
            return await self.messageable(target).send(
                content=content,
                reference=reference,  # type: ignore[arg-type]  # discord.py accepts None here
                files=list(files) or None,  # type: ignore[arg-type]
                allowed_mentions=PING_REPLIED if ping else NO_PINGS,
            )

    async def close_orphan(self, message: OpenMessage, note: str) -> None:
        """Close an answer a dead process left in progress: its message read back and edited
        without the in-progress marker, `note` at its end (or replying to it when it is full)."""
        if not message.message_id.isdigit():
            return
        target = await self.target(message.place)
        async with discord_errors("closing an interrupted answer"):
            found = await self.messageable(target).fetch_message(int(message.message_id))
            content, extra = failure_text(found.content.removesuffix(MARKER), note)
            await found.edit(content=content)
        if extra:
            await self.send(target, content=extra, reply_to=message.message_id, ping=False)

    async def start_reply(self, place: Place, *, reply_to: str = "") -> ChannelReply:
        """Begin a new bot message in `place` (created on the first update, replying to `reply_to`)."""
        target = await self.target(place)
        return ChannelReply(self, target, reply_to=reply_to or target.reply_to)

    async def post_text(self, place: Place, text: str, *, private_to: str = "", reply_to: str = "") -> str:
        """Post a complete message; Discord channels have no private messages, so `private_to` is public."""
        target = await self.target(place)
        first, previous = "", reply_to or target.reply_to
        for part in split_message(text, MAX_CONTENT) if text else ["…"]:
            message = await self.send(target, content=part, reply_to=previous)
            previous = str(message.id)
            first = first or previous
        return first

    async def post_images(self, place: Place, images: Sequence[Image], *, text: str = "") -> str:
        """Upload `images` as files with `text` (split over several messages only past Discord's limits)."""
        target = await self.target(place)
        first = ""
        for batch in upload_batches(images):
            message = await self.send(
                target,
                content=(text[:MAX_CONTENT] or None) if not first else None,
                files=image_files(batch),
                reply_to=first or target.reply_to,
            )
            first = first or str(message.id)
        return first

    async def direct_message(self, user_id: str, text: str) -> str:
        """In the user's DM with the bot (Discord's Create DM, then a message there)."""
        async with discord_errors("opening a direct message"):
            channel = await self._client.create_dm(discord.Object(id=int(user_id)))
        first = ""
        for part in split_message(text, MAX_CONTENT):
            async with discord_errors("sending a direct message"):
                message = await channel.send(content=part, allowed_mentions=NO_PINGS)
            first = first or str(message.id)
        return first

    def typing(self, channel: int) -> None:
        """Show "grokbot is typing…" (in the background, at most every few seconds per channel)."""
        now = self._clock()
        if now - self._typing_at.get(channel, float("-inf")) < TYPING_EVERY_S:
            return
        self._typing_at[channel] = now
        task = asyncio.get_running_loop().create_task(self._type(channel))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _type(self, channel: int) -> None:
        try:
            async with discord_errors("showing typing"):
                await self._client.get_partial_messageable(channel).typing()
        except PlatformError as exc:
            log.debug("typing in %s failed: %s", channel, type(exc.__cause__).__name__)

    # -- reading --------------------------------------------------------------------------------

    async def download(self, attachment: Attachment) -> bytes:
        """The bytes of a user's attachment (Discord's CDN URLs are signed; no credentials needed)."""
        if attachment.data is not None:
            return attachment.data
        async with discord_errors("downloading an attachment"):
            return await self._client.http.get_from_cdn(attachment.url)

    async def channel_history(
        self, place: Place, *, since: datetime, until: datetime, limit: int = 2000
    ) -> Sequence[ChannelMessage]:
        """Messages in [since, until), oldest first; discord.py pages GET …/messages 100 at a time."""
        target = await self.target(place)
        thread = str(target.channel) if target.channel != int(place.channel) else ""
        found: list[ChannelMessage] = []
        async with discord_errors("reading channel history", forbidden=CANNOT_READ):
            history = self.messageable(target).history(
                limit=limit, after=since, before=until, oldest_first=True
            )
            async for message in history:
                found.append(channel_message(message, guild=place.workspace, thread=thread))
        return found

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def channel_message(message: discord.Message, *, guild: str, thread: str) -> ChannelMessage:
    author = message.author
    where = "@me" if guild == "dm" else guild
    return ChannelMessage(
        id=str(message.id),
        author=Author(str(author.id), author.display_name, is_bot=author.bot),
        text=message.content,
        sent_at=message.created_at,
        thread=thread,
        link=f"https://discord.com/channels/{where}/{message.channel.id}/{message.id}",
    )


class ChannelReply(StreamedMessage):
    """One bot message in a channel: posted on the first update (after typing), then edited.

    The first status is typing (a message for "Writing…" would cost a post); later ones (what Grok
    searches, its reasoning while it thinks) are the message itself, at most one per edit
    interval, the newest waiting for its turn, until the answer's text replaces them."""

    def __init__(self, platform: DiscordPlatform, target: Target, *, reply_to: str = "") -> None:
        self._platform = platform
        self._target = target
        self._reply_to = reply_to
        self._message: discord.Message | None = None
        self._lock = asyncio.Lock()  # a status and the answer's first words never both post
        self._statuses = 0
        self._status_at = float("-inf")
        self._waiting = ""
        self._later: asyncio.Task[None] | None = None
        self._answering = False
        self._activity_due = False  # a search began: its status goes without waiting its turn

    async def activity(self, activity: Activity) -> bool:
        """Not shown natively (ShowsActivities): the status line that follows says it, at once."""
        self._activity_due = activity.status == "in_progress"
        return False

    async def status(self, text: str) -> None:
        self._waiting = ""
        self._statuses += 1
        due, self._activity_due = self._activity_due, False
        if self._answering:
            return
        if self._statuses == 1 and self._message is None:
            self._platform.typing(self._target.channel)
            return
        wait = self._status_at + CAPABILITIES.edit_interval - self._platform.monotonic()
        if wait > 0 and not due:
            self._waiting = text
            if self._later is None or self._later.done():
                self._later = asyncio.create_task(self._status_after(wait))
            return
        self._status_at = self._platform.monotonic()
        async with self._lock:
            if self._answering:
                return
            try:
                await self._write(text[:MAX_CONTENT])
            except PlatformError as exc:  # cosmetic: the answer's own post or edit follows
                log.debug("status in %s failed: %s", self._target.channel, type(exc.__cause__).__name__)

    async def _status_after(self, wait: float) -> None:
        """The newest waiting status once the interval allows, and any newer one that came meanwhile."""
        while self._waiting:
            await asyncio.sleep(wait)
            if self._waiting:
                await self.status(self._waiting)
            wait = self._status_at + CAPABILITIES.edit_interval - self._platform.monotonic()

    async def _extra(
        self, *, content: str | None, files: Sequence[discord.File] = (), reply_to: str, ping: bool = True
    ) -> None:
        await self._platform.send(self._target, content=content, files=files, reply_to=reply_to, ping=ping)

    async def _show(self, content: str, *, files: Sequence[discord.File] = ()) -> None:
        self._answering = True  # a status waiting for its turn is not shown any more
        async with self._lock:
            await self._write(content, files=files)

    async def _write(self, content: str, *, files: Sequence[discord.File] = ()) -> None:
        if self._message is None:
            self._message = await self._platform.send(
                self._target,
                content=content or None,
                reply_to=self._reply_to,
                files=files,
            )
            return
        async with discord_errors("editing a message"):
            if files:
                self._message = await self._message.edit(content=content or None, attachments=list(files))
            else:
                self._message = await self._message.edit(content=content)
