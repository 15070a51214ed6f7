"""Discord as a `bot.platform.Platform`: where a Place's messages go, replies that are edited while an
answer streams, uploads, attachment downloads, channel history, and Discord's errors as PlatformError.

Place convention (the engine stores these; keep them stable):
- guild channel, a mention:   Place("discord", guild, channel, thread=<the mentioning message id>)
- inside a thread channel:    Place("discord", guild, <parent channel>, thread=<thread id>)
- slash command in a channel: Place("discord", guild, channel, "")
- direct messages:            Place("discord", "dm", <DM channel id>, "")
A thread made with "Create Thread" from a message has that message's id, so a conversation started by
a mention continues, unchanged, in a thread created from the mention.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime

import aiohttp
import discord

from bot.errors import PlatformError, PlatformRateLimited, PlatformUncertain
from bot.platform import Attachment, Author, Capabilities, ChannelMessage, Image, Place, Reply
from bot.streaming import split_message

log = logging.getLogger(__name__)

MARKER = " ⚪"  # appended while an answer is still streaming (llmcord's convention)
MAX_CONTENT = 2000
MAX_UPLOAD = 10 * 1024 * 1024  # per file since 2025-01-16, without boosts
MAX_REQUEST = 24 * 1024 * 1024  # Discord caps a request at 25 MiB; keep room for the form
TYPING_EVERY_S = 8.0  # typing lasts 10 s on Discord
MAX_RATELIMIT_TIMEOUT = 30.0  # discord.py's minimum: longer waits raise RateLimited instead of hanging
PLATFORM = "discord"

CAPABILITIES = Capabilities(
    max_message_length=MAX_CONTENT - len(MARKER),
    edit_interval=1.0,
    native_streaming=False,
    max_upload_bytes=MAX_UPLOAD,
    # Message edits are bucketed per channel (PATCH /channels/{id}/messages/{id} answers
    # X-RateLimit-Limit 5 per 5 s), and one report saw 429s above ~1 edit/s per channel
    # (platforms.md D3). So every stream in a channel shares 60 edits a minute with a burst of 5:
    # one answer gets its ~1 edit/s, ten simultaneous answers share it without drawing a 429.
    scope_edits_per_minute=60.0,
    scope_burst=5,
    private_files=True,  # an ephemeral command answer takes files too
)

NO_PINGS = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=False)
PING_REPLIED = discord.AllowedMentions(everyone=False, users=False, roles=False, replied_user=True)


def retry_after_of(exc: discord.HTTPException) -> float:
    header = exc.response.headers.get("Retry-After") if exc.response is not None else None
    try:
        return float(header) if header else 5.0
    except ValueError:
        return 5.0


@asynccontextmanager
async def discord_errors(action: str) -> AsyncIterator[None]:
    """Discord's refusals as PlatformError; 429s and discord.py's RateLimited as PlatformRateLimited."""
    try:
        yield
    except discord.RateLimited as exc:
        raise PlatformRateLimited(f"Discord rate limit while {action}", retry_after=exc.retry_after) from exc
    except discord.HTTPException as exc:
        if exc.status == 429:
            raise PlatformRateLimited(
                f"Discord answered 429 while {action}", retry_after=retry_after_of(exc)
            ) from exc
        raise PlatformError(f"Discord refused {action}: {exc.status} (code {exc.code}) {exc.text}") from exc
    except aiohttp.ClientConnectorError as exc:  # never reached Discord
        raise PlatformError(f"Discord unreachable while {action}: {type(exc).__name__}") from exc
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        # Sent, but no answer: Discord may have done it.
        raise PlatformUncertain(f"No answer from Discord while {action}: {type(exc).__name__}") from exc


def image_files(images: Sequence[Image]) -> list[discord.File]:
    return [
        discord.File(
            io.BytesIO(image.data), filename=image.filename, description=image.caption[:1024] or None
        )
        for image in images
    ]


def upload_batches(images: Sequence[Image]) -> list[list[Image]]:
    """Images grouped so that no request passes Discord's 25 MiB or 10-file limits."""
    batches: list[list[Image]] = [[]]
    size = 0
    for image in images:
        if batches[-1] and (size + len(image.data) > MAX_REQUEST or len(batches[-1]) == 10):
            batches.append([])
            size = 0
        batches[-1].append(image)
        size += len(image.data)
    return batches


def failure_text(shown: str, message: str) -> tuple[str, str]:
    """(what the message should show, a note to post separately or "") after a failure."""
    note = message if message.startswith("⚠️") else f"⚠️ {message}"
    if not shown:
        return note[:MAX_CONTENT], ""
    combined = f"{shown}\n\n{note}"
    if len(combined) <= MAX_CONTENT:
        return combined, ""
    return shown, note[:MAX_CONTENT]


class Target:
    """Where a Place's messages go: a channel id, and the message a reply links to by default."""

    __slots__ = ("channel", "guild", "reply_to")

    def __init__(self, channel: int, guild: int | None, reply_to: str = "") -> None:
        self.channel = channel
        self.guild = guild
        self.reply_to = reply_to


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

    def rate_scope(self, place: Place) -> str:
        # Threads share their parent's budget: simple, and never above Discord's per-channel limits.
        return f"channel:{place.channel}"

    # -- places ---------------------------------------------------------------------------------

    def note_thread(self, thread: str, *, is_thread: bool) -> None:
        """Remember whether a Place.thread is a thread channel or a message id (saves a lookup)."""
        self._threads[thread] = is_thread
        self._threads.move_to_end(thread)
        while len(self._threads) > 4096:
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
        async with discord_errors("reading channel history"):
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


class StreamedMessage:
    """One message of an answer: `_show` posts it the first time and edits it after; further image
    batches and a failure's note are separate messages (`_extra`)."""

    _message: discord.Message | discord.WebhookMessage | None = None
    _shown = ""  # the text shown, without the marker

    @property
    def message_id(self) -> str:
        return str(self._message.id) if self._message is not None else ""

    async def update(self, text: str) -> None:
        """Show `text` with the in-progress marker."""
        await self._show(text + MARKER)
        self._shown = text

    async def finish(self, text: str, *, images: Sequence[Image] = ()) -> None:
        """Show `text` as final, with `images` uploaded as files."""
        batches = upload_batches(images) if images else [[]]
        await self._show(text or ("" if images else "…"), files=image_files(batches[0]))
        self._shown = text
        for batch in batches[1:]:
            await self._extra(content=None, files=image_files(batch), reply_to=self.message_id)

    async def fail(self, message: str) -> None:
        """Keep what was shown, without the marker, and say what happened."""
        content, note = failure_text(self._shown, message)
        await self._show(content)
        if note:
            await self._extra(content=note, reply_to=self.message_id, ping=False)

    async def _show(self, content: str, *, files: Sequence[discord.File] = ()) -> None:
        raise NotImplementedError

    async def _extra(
        self, *, content: str | None, files: Sequence[discord.File] = (), reply_to: str, ping: bool = True
    ) -> None:
        raise NotImplementedError


class ChannelReply(StreamedMessage):
    """One bot message in a channel: posted on the first update (after typing), then edited."""

    def __init__(self, platform: DiscordPlatform, target: Target, *, reply_to: str = "") -> None:
        self._platform = platform
        self._target = target
        self._reply_to = reply_to
        self._message: discord.Message | None = None

    async def status(self, text: str) -> None:
        """Typing until the first text (a status line would cost a message edit from the budget)."""
        if self._message is None:
            self._platform.typing(self._target.channel)

    async def _extra(
        self, *, content: str | None, files: Sequence[discord.File] = (), reply_to: str, ping: bool = True
    ) -> None:
        await self._platform.send(self._target, content=content, files=files, reply_to=reply_to, ping=ping)

    async def _show(self, content: str, *, files: Sequence[discord.File] = ()) -> None:
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


class EventPlatform:
    """DiscordPlatform seen from one event: that event's attachments are read through discord.py,
    and everything a subclass does not change goes to the long-lived platform."""

    def __init__(self, base: DiscordPlatform, attachments: Mapping[str, discord.Attachment]) -> None:
        self.base = base
        self._attachments = dict(attachments)

    @property
    def name(self) -> str:
        return self.base.name

    @property
    def capabilities(self) -> Capabilities:
        return self.base.capabilities

    def rate_scope(self, place: Place) -> str:
        return self.base.rate_scope(place)

    async def start_reply(self, place: Place, *, reply_to: str = "") -> Reply:
        return await self.base.start_reply(place, reply_to=reply_to)

    async def post_text(self, place: Place, text: str, *, private_to: str = "") -> str:
        return await self.base.post_text(place, text, private_to=private_to)

    async def post_images(self, place: Place, images: Sequence[Image], *, text: str = "") -> str:
        return await self.base.post_images(place, images, text=text)

    async def direct_message(self, user_id: str, text: str) -> str:
        return await self.base.direct_message(user_id, text)

    async def download(self, attachment: Attachment) -> bytes:
        found = self._attachments.get(attachment.url)
        if found is None:
            return await self.base.download(attachment)
        async with discord_errors("downloading an attachment"):
            return await found.read()

    async def channel_history(
        self, place: Place, *, since: datetime, until: datetime, limit: int = 2000
    ) -> Sequence[ChannelMessage]:
        return await self.base.channel_history(place, since=since, until=until, limit=limit)


class MessagePlatform(EventPlatform):
    """For one user message: texts (errors, notices) reply to it."""

    def __init__(self, base: DiscordPlatform, message: discord.Message) -> None:
        super().__init__(base, {a.url: a for a in message.attachments})
        self._message = message

    async def post_text(self, place: Place, text: str, *, private_to: str = "") -> str:
        return await self.base.post_text(place, text, private_to=private_to, reply_to=str(self._message.id))
